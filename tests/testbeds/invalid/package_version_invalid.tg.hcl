# Versions are exact Debian versions.
network "lab" {}
node "a" {
  image = "host"
}
package "nginx" {
  version = "latest"
  on      = [node.a]
}
