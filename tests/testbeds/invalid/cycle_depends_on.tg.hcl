# Nodes that depend on each other.
network "lab" {}
node "a" {
  image      = "host"
  depends_on = [node.b]
}
node "b" {
  image      = "host"
  depends_on = [node.a]
}
