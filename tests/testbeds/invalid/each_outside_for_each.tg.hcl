# `each.key` in a block without `for_each`.
network "lab" {}
node "a" {
  count  = 2
  image  = "host"
  labels = { k = each.key }
}
