# A variable with no default and no value given.
variable "edge_count" {
  type = number
}
