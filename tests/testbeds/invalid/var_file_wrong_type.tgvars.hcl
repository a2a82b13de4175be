edge_count = "three"
image      = local.image
