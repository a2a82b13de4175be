# A string that is never closed.
network "lab" {}
node "a" {
  image = "host
}
