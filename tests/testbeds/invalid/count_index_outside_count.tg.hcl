# `count.index` in a block without `count`.
network "lab" {}
node "a" {
  image  = "host"
  labels = { n = count.index }
}
