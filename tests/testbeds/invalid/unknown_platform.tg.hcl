# A node on a platform that is not declared.
network "lab" {}
node "a" {
  image    = "host"
  platform = "ssh-pool"
}
