# Two nodes with one fixed address.
network "lab" {
  cidr = "10.42.0.0/24"
}
node "a" {
  image   = "host"
  address = "10.42.0.10"
}
node "b" {
  image   = "host"
  address = cidrhost(network.lab.cidr, 10)
}
