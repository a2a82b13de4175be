# An output block with an attribute outputs do not have.
output "x" {
  value  = 1
  sensitve = true
}
