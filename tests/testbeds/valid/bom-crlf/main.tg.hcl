# Saved by an editor with a byte order mark and CRLF line endings.
network "lab" {
  cidr = "10.42.0.0/24"
}

node "a" {
  image = "host"
}
