# A node whose labels refer to itself.
network "lab" {}
node "a" {
  image  = "host"
  labels = { peer = node.a.hostname }
}
