# `cidr` takes a string.
network "lab" {
  cidr = 10
}
