# No network at all.
node "a" {
  image = "host"
}
