# args: -var-file nowhere.tgvars.hcl
# A variable file that does not exist.
variable "edge_count" {
  default = 1
}
