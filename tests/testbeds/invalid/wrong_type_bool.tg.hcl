# `nat` takes true or false.
network "lab" {
  nat = "yes"
}
