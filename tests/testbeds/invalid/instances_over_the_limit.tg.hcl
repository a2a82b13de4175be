# Ten blocks of 100,000 instances: refused at the first, which alone is
# past the limit of 50,000 instances per testbed.
network "lab" {
  cidr = "10.0.0.0/8"
}
node "a" {
  count = 100000
  image = "host"
}
node "b" {
  count = 30000
  image = "host"
}
node "c" {
  count = 30000
  image = "host"
}
