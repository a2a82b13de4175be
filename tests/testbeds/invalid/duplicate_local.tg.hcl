# One local declared in two `locals` blocks.
locals {
  image = "host"
}
locals {
  image = "debian:bookworm"
}
