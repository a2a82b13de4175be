# `.1` belongs to the host side.
network "lab" {
  cidr = "10.42.0.0/24"
}
node "a" {
  image   = "host"
  address = "10.42.0.1"
}
