# Every function of the language, once; tests/it/validate.rs checks each
# output's value.
locals {
  net  = "10.42.0.0/24"
  list = ["a", "b", "c"]
  map  = { a = 1, b = 2 }
}

output "abs" { value = abs(-3) }
output "ceil" { value = ceil(1.2) }
output "chomp" { value = chomp("line\n") }
output "cidrhost" { value = cidrhost(local.net, 10) }
output "cidrnetmask" { value = cidrnetmask(local.net) }
output "cidrsubnet" { value = cidrsubnet("10.42.0.0/16", 8, 1) }
output "coalesce" { value = coalesce("", "first", "second") }
output "compact" { value = compact(["a", "", "b"]) }
output "concat" { value = concat(["a"], ["b", "c"]) }
output "contains" { value = contains(local.list, "b") }
output "distinct" { value = distinct(["a", "b", "a"]) }
output "element" { value = element(local.list, 4) }
output "endswith" { value = endswith("edge-0", "-0") }
output "env" { value = env("TG_CORPUS_NEVER_SET", "fallback") }
output "file" { value = file("hello.txt") }
output "flatten" { value = flatten([[1], [2, [3]]]) }
output "floor" { value = floor(1.8) }
output "format" { value = format("edge-%03d", 7) }
output "formatlist" { value = formatlist("web-%s", ["a", "b"]) }
output "index" { value = index(local.list, "b") }
output "join" { value = join(",", local.list) }
output "jsondecode" { value = jsondecode("{\"a\": [1, 2]}") }
output "jsonencode" { value = jsonencode({ a = 1 }) }
output "keys" { value = keys(local.map) }
output "length" { value = length(local.list) }
output "lookup" { value = lookup(local.map, "z", "default") }
output "lower" { value = lower("EDGE") }
output "max" { value = max(3, 9, 1) }
output "merge" { value = merge(local.map, { b = 3 }) }
output "min" { value = min(3, -2, 1) }
output "range" { value = range(0, 6, 2) }
output "replace" { value = replace("a.b.c", ".", "-") }
output "reverse" { value = reverse([1, 2, 3]) }
output "slice" { value = slice(local.list, 1, 3) }
output "sort" { value = sort(["c", "a", "b"]) }
output "split" { value = split(",", "a,b,c") }
output "startswith" { value = startswith("edge", "web") }
output "substr" { value = substr("edge", 1, 3) }
output "sum" { value = sum([1, 2, 3]) }
output "tolist" { value = tolist(toset(["b", "a"])) }
output "tomap" { value = tomap({ a = "x" }) }
output "tonumber" { value = tonumber("42") }
output "toset" { value = toset(["b", "a", "b"]) }
output "tostring" { value = tostring(5) }
output "trimprefix" { value = trimprefix("pkg-edge", "pkg-") }
output "trimspace" { value = trimspace("  edge \n") }
output "trimsuffix" { value = trimsuffix("edge.example", ".example") }
output "upper" { value = upper("edge") }
output "values" { value = values(local.map) }
output "zipmap" { value = zipmap(["a", "b"], [1, 2]) }
output "alltrue" { value = alltrue([true, true]) }
output "anytrue" { value = anytrue([false, true]) }
output "base64decode" { value = base64decode("dGc=") }
output "base64encode" { value = base64encode("tg") }
output "chunklist" { value = chunklist(["a", "b", "c"], 2) }
output "cidrsubnets" { value = cidrsubnets("10.0.0.0/16", 8, 8) }
output "filebase64" { value = filebase64("hello.txt") }
output "fileexists" { value = fileexists("hello.txt") }
output "filesha256" { value = filesha256("hello.txt") }
output "indent" { value = indent(2, "a\nb") }
output "one" { value = one(["x"]) }
output "setintersection" { value = setintersection(["a", "b"], ["b", "c"]) }
output "setsubtract" { value = setsubtract(["a", "b"], ["b"]) }
output "setunion" { value = setunion(["a"], ["b"]) }
output "sha256" { value = sha256("tg") }
output "strrev" { value = strrev("edge") }
output "templatefile" { value = templatefile("greet.tpl", { name = "tg" }) }
output "title" { value = title("edge node") }
