# A CIDR with host bits set.
network "lab" {
  cidr = "10.42.0.5/24"
}
