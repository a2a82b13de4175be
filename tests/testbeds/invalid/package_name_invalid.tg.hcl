# Package names follow Debian's rules.
network "lab" {}
node "a" {
  image = "host"
}
package "Nginx_Full" {
  on = [node.a]
}
