# A node with `count` indexed by a string key.
network "lab" {}
node "edge" {
  count = 2
  image = "host"
}
output "c" {
  value = node.edge["x"].address
}
