# Memory is a size.
network "lab" {}
node "a" {
  image  = "host"
  memory = "lots"
}
