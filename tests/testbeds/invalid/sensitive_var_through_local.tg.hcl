# A sensitive variable shown through a chain of locals.
variable "token" {
  default   = "s3cr3t"
  sensitive = true
}
locals {
  header = "Bearer ${var.token}"
  curl   = "curl -H '${local.header}'"
}
output "cmd" {
  value = local.curl
}
