# depends_on takes a list of resources.
network "lab" {}
node "a" {
  image      = "host"
  depends_on = node.b
}
node "b" {
  image = "host"
}
