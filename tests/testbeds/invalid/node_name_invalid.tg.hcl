# Node names become host names.
network "lab" {}
node "Edge_1" {
  image = "host"
}
