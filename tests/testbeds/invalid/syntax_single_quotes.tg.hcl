# Strings in single quotes.
network "lab" {}
node "a" {
  image = 'host'
}
