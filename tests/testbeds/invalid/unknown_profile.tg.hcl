# A node naming a profile that does not exist.
profile "cdn:basic" {
  image = "host"
}
network "lab" {}
node "a" {
  profile = "cdn:basik"
}
