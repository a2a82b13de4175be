# Two nodes with one name.
network "lab" {}
node "a" {
  image = "host"
}
node "a" {
  image = "host"
}
