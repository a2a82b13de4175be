# A node naming a platform that is neither a kind nor a declared block; the
# help lists both.
network "lab" {}
platform "ssh" "pool-a" {
  user = "root"
}
node "a" {
  image    = "host"
  platform = "pool-b"
}
