# A sensitive variable shown by a non-sensitive output.
variable "token" {
  default   = "s3cr3t"
  sensitive = true
}
output "token" {
  value = "token=${var.token}"
}
