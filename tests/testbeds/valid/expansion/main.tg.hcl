# count, for_each, references, splat, templates, for expressions,
# depends_on, and a node on two networks.
testbed {
  name = "expansion"
}

variable "edge_count" {
  type    = number
  default = 3
}

variable "sites" {
  type    = map(string)
  default = { eu = "10.50.1.0/24", us = "10.50.2.0/24" }
}

locals {
  bed   = "expansion"
  roles = { a = "role-a", b = "role-b" }
}

profile "cdn" {
  image  = "host"
  labels = { tier = "cdn" }
}

network "lab" {
  cidr = "10.42.0.0/24"
}

network "site" {
  for_each = var.sites
  cidr     = each.value
}

node "edge" {
  count   = var.edge_count
  profile = "cdn"
  network = network.lab
  labels  = { slot = count.index }
}

node "web" {
  for_each = local.roles
  image    = "host"
  network  = network.lab
  labels   = { role = each.value, site = each.key }
}

# No instances: still a value (an empty list / map) others can refer to.
node "spare" {
  count = 0
  image = "host"
}

node "extra" {
  for_each = {}
  image    = "host"
}

node "router" {
  image      = "host"
  networks   = [network.lab, network.site["eu"]]
  labels     = { first_edge = node.edge[0].hostname }
  depends_on = [node.edge]
}

package "nginx" {
  on = node.edge
}

output "edge_hosts" {
  value = node.edge[*].hostname
}

output "edge_addresses" {
  value = node.edge[*].address
}

output "web_roles" {
  value = { for k, w in node.web : k => w.labels.role }
}

output "web_hosts" {
  value = [for w in node.web : w.hostname]
}

output "greeting" {
  value = "bed ${local.bed} has ${length(node.edge)} edges: ${join(", ", node.edge[*].hostname)}"
}

output "upper_hosts" {
  value = { for e in node.edge : e.hostname => upper(e.hostname) }
}

output "odd_indexes" {
  value = [for i, e in node.edge : i if i % 2 == 1]
}

output "template_directives" {
  value = "%{for e in node.edge}${e.hostname};%{endfor}"
}

output "nginx_nodes" {
  value = package.nginx.nodes
}

output "no_spares" {
  value = { list = node.spare[*].hostname, map = node.extra, n = length(node.spare) }
}
