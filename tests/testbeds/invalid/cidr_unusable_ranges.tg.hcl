# Ranges where packets never reach a node: loopback, "this network",
# link-local, multicast, reserved (with the broadcast address), and a
# network overlapping one of them.
network "lo" {
  cidr = "127.0.0.0/8"
}
network "zero" {
  cidr = "0.0.0.0/8"
}
network "link" {
  cidr = "169.254.0.0/16"
}
network "mcast" {
  cidr = "224.0.0.0/24"
}
network "bcast" {
  cidr = "255.255.255.0/24"
}
network "wide" {
  cidr = "169.0.0.0/8"
}
