# A deb "file" that is a device: not a regular file (it exists).
network "lab" {}
node "a" {
  image = "host"
}
package "tool" {
  deb = "/dev/null"
  on  = [node.a]
}
