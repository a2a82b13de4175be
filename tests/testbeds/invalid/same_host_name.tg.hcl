# `a` with count 2 makes a-0 and a-1; a node `a-1` clashes.
network "lab" {}
node "a" {
  count = 2
  image = "host"
}
node "a-1" {
  image = "host"
}
