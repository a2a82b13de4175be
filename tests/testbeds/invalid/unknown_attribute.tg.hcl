# A misspelt attribute.
network "lab" {}
node "a" {
  imgae = "host"
}
