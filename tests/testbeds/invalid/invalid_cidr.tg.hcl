# Not a CIDR.
network "lab" {
  cidr = "10.42.0.300/24"
}
