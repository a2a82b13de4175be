# Profile names: no spaces.
profile "cdn basic" {
  image = "host"
}
