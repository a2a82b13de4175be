# Not an IPv4 address.
network "lab" {
  cidr = "10.42.0.0/24"
}
node "a" {
  image   = "host"
  address = "10.42.0"
}
