# Two networks sharing addresses.
network "lab" {
  cidr = "10.42.0.0/16"
}
network "mgmt" {
  cidr = "10.42.7.0/24"
}
