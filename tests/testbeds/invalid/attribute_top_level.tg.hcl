# An attribute outside any block.
image = "host"
network "lab" {}
