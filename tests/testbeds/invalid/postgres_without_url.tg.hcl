# The postgres backend needs a url.
state {
  backend = "postgres"
}
