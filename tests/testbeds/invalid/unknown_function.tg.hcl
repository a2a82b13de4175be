# A misspelt function.
network "lab" {
  cidr = "10.42.0.0/24"
}
node "a" {
  image   = "host"
  address = cidrhots(network.lab.cidr, 10)
}
