# `count` takes a whole number.
network "lab" {}
node "a" {
  count = "many"
  image = "host"
}
