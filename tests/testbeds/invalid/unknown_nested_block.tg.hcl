# `labels` written as a block instead of an attribute.
network "lab" {}
node "a" {
  image = "host"
  labels {
    role = "edge"
  }
}
