# A variable's default is a constant.
locals {
  n = 2
}
variable "count" {
  default = local.n
}
