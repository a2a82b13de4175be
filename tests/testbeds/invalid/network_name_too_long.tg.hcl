# A network name plus its for_each key longer than 63 characters.
network "a-rather-long-network-name-that-is-almost-at-the-limit-of-63" {
  for_each = toset(["eu-west"])
}
