# A node's impair: the network it names, units, and a reorder without delay.
network "lab" {
  impair {
    delay = "50ms"
  }
}
network "other" {}
node "a" {
  image   = "host"
  network = network.lab
  impair {
    network = network.other
    rate    = "10mbps"
  }
  impair {
    reorder = "5%"
    delay   = "0ms"
  }
  impair {
    rate = "10mbps"
  }
}
