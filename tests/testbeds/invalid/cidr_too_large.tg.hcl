# A /4 is larger than any test network needs.
network "lab" {
  cidr = "0.0.0.0/4"
}
