# A misspelt block type.
nodes "a" {
  image = "host"
}
