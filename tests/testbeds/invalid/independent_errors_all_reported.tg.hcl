network "a" {
  cidr = "10.0.0.0/33"
}

network "b" {
  cidr = "10.1.0.0/24"
}

node "x" {
  image   = "hots"
  network = network.b
}

node "y" {
  image   = "host"
  network = network.b
  address = cidrhost(network.b.cidr, 300)
}

node "p" {
  image   = "host"
  network = network.b
  address = "10.1.0.5"
}

node "q" {
  image   = "host"
  network = network.b
  address = "10.1.0.5"
}

node "z" {
  image   = "host"
  network = network.a
}

output "z" {
  value = node.z.address
}

variable "n" {
  type = number
}
