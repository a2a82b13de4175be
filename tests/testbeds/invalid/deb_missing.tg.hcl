# A deb file that does not exist.
network "lab" {}
node "a" {
  image = "host"
}
package "tool" {
  deb = "dist/tool_1.0_amd64.deb"
  on  = [node.a]
}
