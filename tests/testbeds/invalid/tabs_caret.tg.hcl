# Tab-indented: the caret stays under the token.
network "lab" {}
node "a" {
	image = "host"
	cpu	= 2
}
