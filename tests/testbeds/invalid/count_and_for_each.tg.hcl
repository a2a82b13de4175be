# `count` and `for_each` together.
network "lab" {}
node "a" {
  count    = 2
  for_each = toset(["x", "y"])
  image    = "host"
}
