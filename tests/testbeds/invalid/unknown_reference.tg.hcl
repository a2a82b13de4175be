# A reference to a network that does not exist.
network "lab" {}
node "a" {
  image   = "host"
  network = network.lba
}
