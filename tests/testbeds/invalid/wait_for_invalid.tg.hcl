# wait_for: one of command or tcp, a port, durations above zero.
network "lab" {}
node "a" {
  image = "host"
  wait_for {
    tcp     = 0
  }
  wait_for {
    command  = "true"
    interval = "0s"
  }
  wait_for {
    timeout = "5s"
  }
}
