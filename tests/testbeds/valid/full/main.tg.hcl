# Every block type of the language, as the contract shows them.
testbed {
  name        = "cdn-smoke"
  description = "edge + origin smoke bed"
}

variable "edge_count" {
  type        = number
  default     = 2
  description = "how many edges"
  sensitive   = false
  validation {
    condition     = var.edge_count > 0 && var.edge_count <= 64
    error_message = "edge_count must be 1..64"
  }
}

variable "token" {
  type      = string
  default   = "s3cr3t"
  sensitive = true
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
  nat  = false
}

network "mgmt" {
  nat = true
  lifecycle {
    prevent_destroy = true
  }
}

node "edge" {
  count    = var.edge_count
  profile  = "cdn:basic"
  networks = [network.lab, network.mgmt]
  platform = "netns"
  labels   = { role = "edge" }
}

node "origin" {
  image      = "debian:bookworm"
  cpus       = 0.5
  memory     = "1GiB"
  network    = network.lab
  address    = cidrhost(network.lab.cidr, 10)
  depends_on = [node.edge]
}

package "fleche" {
  version = "16.3-1"
  source  = "apt"
  on      = [node.edge]
}

package "tool" {
  deb        = "dist/tool_1.0_amd64.deb"
  on         = [node.origin]
  depends_on = [package.fleche]
}

package "nginx" {
  requires {
    profile = "cdn:basic"
    network = network.lab
  }
}

output "edge_addresses" {
  value       = node.edge[*].address
  description = "edge IPs"
}

output "token" {
  value     = var.token
  sensitive = true
}

platform "ssh" "pool-a" {
  user          = "root"
  identity_file = "~/.ssh/id_ed25519"
  known_hosts   = "~/.ssh/known_hosts"
  host "edge-1" {
    address = "192.0.2.10"
    profile = "cdn:basic"
  }
}

state {
  backend = "sqlite"
  path    = ".tg/state.db"
}
