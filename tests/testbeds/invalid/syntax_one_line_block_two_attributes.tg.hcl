platform "ssh" "pool-a" {
  user = "root"
  host "edge-1" { address = "192.0.2.10"  profile = "cdn:basic" }
}
