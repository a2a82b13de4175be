# `var.` of an undeclared variable.
network "lab" {}
node "a" {
  count = var.edge_count
  image = "host"
}
