# The documented defaults: one network is every node's network; a package
# without `on` gets its own node `pkg-NAME`; a network without `cidr` gets a
# /24 from 10.200.0.0/16.
profile "small" {
  image  = "host"
  memory = "256MiB"
}

network "only" {}

node "a" {
  image = "host"
}

package "python3.11" {
  requires {
    profile = "small"
  }
}

package "nginx" {
  requires {
    profile = "small"
  }
}

output "where" {
  value = package.nginx.nodes
}

output "a_address" {
  value = node.a.address
}

output "cidr" {
  value = network.only.cidr
}
