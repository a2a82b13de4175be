# Only one `state` block.
state {
  backend = "sqlite"
}
state {
  backend = "sqlite"
}
