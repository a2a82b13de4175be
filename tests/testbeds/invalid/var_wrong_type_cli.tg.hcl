# args: -var edge_count=many
# `-var` with a value of the wrong type.
variable "edge_count" {
  type    = number
  default = 1
}
