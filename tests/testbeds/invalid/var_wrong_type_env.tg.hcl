# env: TG_VAR_nat=maybe
# `TG_VAR_` with a value of the wrong type.
variable "nat" {
  type    = bool
  default = false
}
