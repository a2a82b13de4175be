# Several networks: a node must say which it is on.
network "lab" {}
network "mgmt" {}
node "a" {
  image = "host"
}
