# Names in strings where references are expected.
network "lab" {}
network "mgmt" {}
node "edge" {
  image   = "host"
  network = "lab"
}
