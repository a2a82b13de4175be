# An attribute without `=`.
node "a" {
  image "host"
}
