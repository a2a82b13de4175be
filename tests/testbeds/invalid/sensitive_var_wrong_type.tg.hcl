# args: -var token=hunter2
# A sensitive variable's value is not shown, even when it has the wrong type.
variable "token" {
  type      = number
  sensitive = true
}
