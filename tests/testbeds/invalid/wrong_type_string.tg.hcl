# `image` takes a string, not a list.
network "lab" {}
node "a" {
  image = ["host"]
}
