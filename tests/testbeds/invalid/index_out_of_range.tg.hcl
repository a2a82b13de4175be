# An index past the end of a count.
network "lab" {}
node "a" {
  count = 2
  image = "host"
}
output "third" {
  value = node.a[2].address
}
