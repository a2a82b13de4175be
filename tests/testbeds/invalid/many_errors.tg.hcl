# Several independent problems are all reported in one run.
network "Lab" {}
nodes "a" {}
node "b" {
  imgae = "host"
}
output "o" {
  value = upperr("x")
}
