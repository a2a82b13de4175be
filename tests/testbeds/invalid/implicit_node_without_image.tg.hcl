# A package without `on` and without `requires`: its node needs an image.
network "lab" {}
package "nginx" {}
