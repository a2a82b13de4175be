# Moves that lead back where they started.
node "c" {
  image = "host"
}

moved {
  from = node.a
  to   = node.b
}

moved {
  from = node.b
  to   = node.a
}
