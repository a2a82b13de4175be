# Every problem of `moved` blocks at once: a bad kind, a string, the same
# address, two kinds, a block still declared, an address moved twice.
node "kept" {
  image = "host"
}

node "new" {
  image = "host"
}

moved {
  from = var.old
  to   = node.new
}

moved {
  from = "node.old"
  to   = node.new
}

moved {
  from = node.new
  to   = node.new
}

moved {
  from = network.lab
  to   = node.new
}

moved {
  from = node.kept
  to   = node.new
}

moved {
  from = node.a
  to   = node.new
}

moved {
  from = node.a
  to   = node.b
}
