# A type in quotes, and a misspelt type.
variable "a" {
  type = "string"
}
variable "b" {
  type = strin
}
