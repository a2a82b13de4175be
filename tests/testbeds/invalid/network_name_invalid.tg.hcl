# Network names become parts of host object names.
network "lab;rm" {}
