# List elements without commas.
network "a" {}
network "b" {}
node "n" {
  image    = "host"
  networks = [network.a network.b]
}
