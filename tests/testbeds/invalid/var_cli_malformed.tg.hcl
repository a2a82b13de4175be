# args: -var edge_count
# `-var` without `=`.
variable "edge_count" {
  default = 1
}
