# `on` with host names instead of node references.
network "lab" {}
node "edge" {
  image = "host"
}
package "nginx" {
  on = ["edge"]
}
