# `a` with count 2 makes networks a-0 and a-1; a network `a-1` clashes.
network "a" {
  count = 2
}
network "a-1" {}
