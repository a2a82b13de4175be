# A fixed address outside its network.
network "lab" {
  cidr = "10.42.0.0/24"
}
node "a" {
  image   = "host"
  address = "10.43.0.10"
}
