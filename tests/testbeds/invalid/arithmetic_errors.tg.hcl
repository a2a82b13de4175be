# Arithmetic that hcl-rs would panic on: remainder by zero, division by
# zero, results too large. Each is an error; tg does not crash.
locals {
  a = 5 % 0
  b = 5 / 0
  c = "edge-${10 % 0}"
  d = 1e308 * 10
  e = -9223372036854775808 % -1
  f = 18446744073709551615 + 1
}
output "ok" {
  value = [local.e, local.f]
}
