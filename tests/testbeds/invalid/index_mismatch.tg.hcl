# A count node used without an index, a single node with one, a count node with a string key.
network "lab" {}
node "edge" {
  count = 2
  image = "host"
}
node "single" {
  image = "host"
}
output "a" {
  value = node.edge.address
}
output "b" {
  value = node.single[0].address
}
output "c" {
  value = node.edge["x"].address
}
