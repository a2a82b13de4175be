# Two networks: web nodes in front, a database behind, a gateway on both.
# The front network gets egress (nat); the back one stays closed.

testbed {
  name        = "two-tier"
  description = "web tier, db tier, a gateway between them"
}

variable "web_count" {
  type    = number
  default = 2
  validation {
    condition     = var.web_count >= 1 && var.web_count <= 20
    error_message = "web_count must be 1..20"
  }
}

profile "small" {
  image  = "host"
  cpus   = 0.5
  memory = "256MiB"
}

network "front" {
  cidr = "10.60.1.0/24"
  nat  = true
}

network "back" {
  # no cidr: tg picks a free /24 from 10.200.0.0/16
}

node "web" {
  count   = var.web_count
  profile = "small"
  network = network.front
  labels  = { role = "web" }
}

node "db" {
  profile = "small"
  network = network.back
  address = cidrhost(network.back.cidr, 10)
  labels  = { role = "db" }
}

node "gw" {
  image    = "host"
  networks = [network.front, network.back]
  labels   = { role = "gateway" }
}

package "hello" {
  on = [node.web]
}

output "web" {
  value = { for n in node.web : n.hostname => n.address }
}

output "db_address" {
  value = node.db.address
}
