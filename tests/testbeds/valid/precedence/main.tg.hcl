# `count = var.n`: the instance count shows which value of `n` won
# (default < TG_VAR_n < -var-file < -var).
variable "n" {
  type    = number
  default = 1
}

network "lab" {
  cidr = "10.42.0.0/24"
}

node "edge" {
  count = var.n
  image = "host"
}
