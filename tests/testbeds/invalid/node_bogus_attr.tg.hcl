# A node attribute that does not exist.
network "lab" {}
node "a" {
  image = "host"
}
output "x" {
  value = node.a.bogus_attr
}
