# A network's impair: units and ranges.
network "lab" {
  impair {
    delay = "50"
    loss  = "101%"
  }
}
