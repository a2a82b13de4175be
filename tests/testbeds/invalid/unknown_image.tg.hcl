# Images are host, debian:RELEASE or dir:PATH.
network "lab" {}
node "a" {
  image = "ubuntu:22.04"
}
