# A node without its name, a platform with one label only.
network "lab" {}
node {
  image = "host"
}
platform "ssh" {
  user = "root"
}
