# A package without `on` gets node `pkg-nginx`, which is already declared.
network "lab" {}
node "pkg-nginx" {
  image = "host"
}
package "nginx" {}
