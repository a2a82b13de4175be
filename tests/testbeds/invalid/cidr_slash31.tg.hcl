# A /31 has no room for the host side and a node.
network "lab" {
  cidr = "10.42.0.0/31"
}
