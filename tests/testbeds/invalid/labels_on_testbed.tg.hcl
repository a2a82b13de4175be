# `testbed` takes no label.
testbed "bed" {
  name = "bed"
}
