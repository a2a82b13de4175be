# An output without `value`, a validation without `error_message`.
variable "n" {
  default = 1
  validation {
    condition = var.n > 0
  }
}
output "addr" {
  description = "nothing"
}
