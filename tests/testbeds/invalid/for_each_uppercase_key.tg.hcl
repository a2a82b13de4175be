# for_each keys become host names.
network "lab" {}
node "web" {
  for_each = toset(["a", "B"])
  image    = "host"
}
