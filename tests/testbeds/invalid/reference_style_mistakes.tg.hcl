# A profile referred to like a resource, and `depends_on` with strings.
profile "cdn" {
  image = "host"
}
network "lab" {}
node "edge" {
  image = "host"
}
node "x" {
  profile    = profile.cdn
  depends_on = ["node.edge"]
}
