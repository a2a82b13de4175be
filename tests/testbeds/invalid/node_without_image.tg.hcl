# A node needs an image, directly or from its profile.
network "lab" {}
node "a" {
  cpus = 1
}
