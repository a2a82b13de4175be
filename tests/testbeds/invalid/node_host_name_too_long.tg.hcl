# A node name plus its for_each key longer than 63 characters.
network "lab" {}
node "a-rather-long-node-name-that-is-almost-at-the-limit-of-63-chars" {
  for_each = toset(["web"])
  image    = "host"
}
