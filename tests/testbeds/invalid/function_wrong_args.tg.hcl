# A function called with the wrong number of arguments.
network "lab" {
  cidr = "10.42.0.0/24"
}
node "a" {
  image   = "host"
  address = cidrhost(network.lab.cidr)
}
