# A label with a line break in it: the message stays on one line.
network "lab
net" {}
