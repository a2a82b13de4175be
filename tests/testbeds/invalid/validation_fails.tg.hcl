# A validation block that fails shows its error_message.
variable "edge_count" {
  type    = number
  default = 0
  validation {
    condition     = var.edge_count > 0 && var.edge_count <= 64
    error_message = "edge_count must be 1..64"
  }
}
