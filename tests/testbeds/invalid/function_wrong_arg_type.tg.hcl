# A function called with an argument of the wrong type.
network "lab" {
  cidr = "10.42.0.0/24"
}
node "a" {
  image   = "host"
  address = cidrhost(network.lab.cidr, "ten")
}
