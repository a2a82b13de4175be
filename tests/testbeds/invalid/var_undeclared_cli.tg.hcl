# args: -var edge_cuont=3
# `-var` for a variable that is not declared.
variable "edge_count" {
  default = 1
}
