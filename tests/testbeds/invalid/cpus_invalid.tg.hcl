# cpus is a positive number.
network "lab" {}
node "a" {
  image = "host"
  cpus  = -1
}
