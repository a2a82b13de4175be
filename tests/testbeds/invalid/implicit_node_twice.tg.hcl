# Two packages without `on` whose implicit nodes would share a name.
network "lab" {}
package "python3.11" {
  requires {
    image = "host"
  }
}
package "python3-11" {
  requires {
    image = "host"
  }
}
