# args: -var-file var_file_wrong_type.tgvars.hcl
# A variable file whose value does not fit the type, and that refers to
# something.
variable "edge_count" {
  type = number
}
variable "image" {
  default = "host"
}
