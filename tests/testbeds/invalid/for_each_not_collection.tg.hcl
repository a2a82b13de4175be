# for_each over a number.
network "lab" {}
node "web" {
  for_each = 3
  image    = "host"
}
