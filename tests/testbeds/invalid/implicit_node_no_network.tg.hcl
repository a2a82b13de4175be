# A package without `on`, with several networks: its node needs one.
network "a" {}
network "b" {}
package "nginx" {
  requires {
    image = "host"
  }
}
