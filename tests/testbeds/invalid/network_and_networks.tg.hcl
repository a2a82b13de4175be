# `network` and `networks` together.
network "lab" {}
network "mgmt" {}
node "a" {
  image    = "host"
  network  = network.lab
  networks = [network.lab, network.mgmt]
}
