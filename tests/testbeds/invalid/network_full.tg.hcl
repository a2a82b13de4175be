# A /29 holds five nodes; six are asked for.
network "lab" {
  cidr = "10.42.0.0/29"
}
node "edge" {
  count = 6
  image = "host"
}
