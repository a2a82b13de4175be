# An unknown state backend.
state {
  backend = "postgresql"
}
