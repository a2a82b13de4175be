# Host bits set in a /16: the suggestion is the /16's network address.
network "lab" {
  cidr = "10.1.2.3/16"
}
