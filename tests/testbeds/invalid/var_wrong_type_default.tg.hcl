# A default that does not fit the type.
variable "edges" {
  type    = list(string)
  default = "edge"
}
