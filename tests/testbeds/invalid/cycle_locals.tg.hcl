# Locals that refer to each other.
locals {
  a = local.b
  b = local.c
  c = local.a
}
