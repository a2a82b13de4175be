# An attribute set with `:` as in YAML or JSON.
network "lab" {}
node "a" {
  image: "host"
}
