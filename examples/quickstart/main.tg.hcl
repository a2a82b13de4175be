testbed {
  name        = "quickstart"
  description = "two edges and an origin on one network"
}

variable "edge_count" {
  type        = number
  default     = 2
  description = "how many edges"
  validation {
    condition     = var.edge_count > 0 && var.edge_count <= 64
    error_message = "edge_count must be 1..64"
  }
}

locals {
  image = "host"
}

profile "cdn:basic" {
  image  = local.image
  cpus   = 1
  memory = "512MiB"
  labels = { tier = "cdn" }
}

network "lab" {
  cidr = "10.42.0.0/24"
}

node "edge" {
  count   = var.edge_count
  profile = "cdn:basic"
  network = network.lab
  labels  = { role = "edge" }
}

node "origin" {
  image      = "host"
  network    = network.lab
  address    = cidrhost(network.lab.cidr, 10)
  depends_on = [node.edge]
}

output "edge_addresses" {
  value       = node.edge[*].address
  description = "edge IPs"
}
