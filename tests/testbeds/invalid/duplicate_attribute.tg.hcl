# An attribute set twice in one block.
network "lab" {}
node "a" {
  image = "host"
  image = "debian:bookworm"
}
