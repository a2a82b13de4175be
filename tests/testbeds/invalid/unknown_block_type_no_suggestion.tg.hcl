# A block type that is nothing like the known ones.
container "a" {
  image = "host"
}
