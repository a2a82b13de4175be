# An unknown platform driver.
platform "docker" "pool" {
  user = "root"
}
