# A reference with an unknown root, and a bare word meant as a string.
network "lab" {}
node "a" {
  image   = host
  network = netwrk.lab
}
