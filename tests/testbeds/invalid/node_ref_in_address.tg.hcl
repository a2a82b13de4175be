# `address` is decided before nodes exist: it cannot refer to nodes.
network "lab" {
  cidr = "10.42.0.0/24"
}
node "a" {
  image = "host"
}
node "b" {
  image   = "host"
  address = node.a.address
}
