# A block that is never closed.
network "lab" {
  cidr = "10.42.0.0/24"

node "a" {
  image = "host"
}
