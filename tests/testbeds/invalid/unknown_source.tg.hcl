# An unknown package source.
network "lab" {}
node "a" {
  image = "host"
}
package "tool" {
  source = "snap"
  on     = [node.a]
}
