//! Tests of `tg fmt`: layout cases, snapshots and properties (stable
//! output, tokens and HCL body kept).
use super::*;
use proptest::prelude::*;

/// Format, and check the result is stable and itself formatted.
#[track_caller]
fn fmt(src: &str) -> String {
    let once = match format_source(src) {
        Ok(s) => s,
        Err(e) => panic!("format failed: {e}\n--- input\n{src}"),
    };
    let twice = format_source(&once).expect("formatted output formats");
    assert_eq!(once, twice, "not idempotent\n--- input\n{src}");
    assert!(is_formatted(&once).unwrap());
    once
}

/// A snapshot of input and output side by side, for review.
fn show(src: &str) -> String {
    format!("{src}\n==== formatted ====\n{}", fmt(src))
}

const MESSY_SPACING: &str = concat!(
    "node\"web\"   \"x\"{\n",
    "count=2\n",
    "   image   =    \"host\"\n",
    "\tcpus =1+2* 3\n",
    "labels={role=\"web\",tier  =  \"a\"}\n",
    "networks = [ network.a , network.b ]\n",
    "address = cidrhost( network.lab.cidr , 10 )\n",
    "}\n",
);

#[test]
fn messy_spacing() {
    insta::assert_snapshot!(show(MESSY_SPACING));
}

const ALIGNMENT_RUNS_BROKEN_BY_BLANK_LINES_AND_COMMENTS: &str = concat!(
    "variable \"edge_count\" {\n",
    "  type = number\n",
    "  default = 2\n",
    "\n",
    "  description = \"how many edges\"\n",
    "  sensitive = false\n",
    "  # a comment breaks the run\n",
    "  x = 1\n",
    "  longer_name = 2\n",
    "  nested {\n",
    "    a = 1\n",
    "  }\n",
    "  after_block = 3\n",
    "  b = 4\n",
    "}\n",
);

#[test]
fn alignment_runs_broken_by_blank_lines_and_comments() {
    insta::assert_snapshot!(show(ALIGNMENT_RUNS_BROKEN_BY_BLANK_LINES_AND_COMMENTS));
}

const MULTI_LINE_VALUE_BREAKS_THE_RUN: &str = concat!(
    "profile \"cdn:basic\" {\n",
    "  image = local.image\n",
    "  cpus = 1\n",
    "  labels = {\n",
    "  tier = \"cdn\"\n",
    "  role    = \"edge\"\n",
    "  }\n",
    "  memory = \"512MiB\"\n",
    "  x = 1\n",
    "}\n",
);

#[test]
fn multi_line_value_breaks_the_run() {
    insta::assert_snapshot!(show(MULTI_LINE_VALUE_BREAKS_THE_RUN));
}

const NESTED_BLOCKS: &str = concat!(
    "variable \"n\" {\n",
    "type = number\n",
    "validation {\n",
    "condition = var.n > 0 && var.n <= 64\n",
    "error_message = \"n must be 1..64\"\n",
    "}\n",
    "}\n",
    "node \"a\" {\n",
    "      lifecycle {\n",
    "  create_before_destroy = true\n",
    "         }\n",
    "  empty {}\n",
    "  empty_multi {\n",
    "  }\n",
    "}\n",
);

#[test]
fn nested_blocks() {
    insta::assert_snapshot!(show(NESTED_BLOCKS));
}

const ONE_LINE_BLOCKS: &str = concat!(
    "platform   \"ssh\"   \"pool-a\"   {\n",
    "  user = \"root\"\n",
    "  identity_file = \"~/.ssh/id_ed25519\"\n",
    "  host \"edge-1\"{address=\"192.0.2.10\"}\n",
    "  host \"edge-2\" {   address   =   \"192.0.2.11\"   }\n",
    "  host \"edge-3\" {}\n",
    "}\n",
);

#[test]
fn one_line_blocks() {
    insta::assert_snapshot!(show(ONE_LINE_BLOCKS));
}

const MULTI_LINE_MAPS_AND_LISTS: &str = concat!(
    "locals {\n",
    "names = [\n",
    "\"a\",\n",
    "    \"b\",\n",
    "]\n",
    "nested = {\n",
    "one = { x = 1 }\n",
    "two_two = [\n",
    "1, 2,\n",
    "3,\n",
    "]\n",
    "\"quoted key\" = 3\n",
    "}\n",
    "list_of_maps = [{\n",
    "a = 1\n",
    "}, {\n",
    "bb = 2\n",
    "}]\n",
    "call = f(a, {\n",
    "k = 1\n",
    "}, b)\n",
    "pending = [{\n",
    "x = 1\n",
    "}\n",
    "]\n",
    "merged = merge(\n",
    "local.a,\n",
    "{ c = 3 },\n",
    ")\n",
    "}\n",
);

#[test]
fn multi_line_maps_and_lists() {
    insta::assert_snapshot!(show(MULTI_LINE_MAPS_AND_LISTS));
}

const FOR_EXPRESSIONS: &str = concat!(
    "locals {\n",
    "upper = [for s in var.list: upper(s)]\n",
    "by_name = {for n in var.nodes: n.name => n.address}\n",
    "grouped = {for k,v in var.m : k => v...}\n",
    "filtered = [\n",
    "for n in var.nodes : n.name\n",
    "if n.enabled\n",
    "]\n",
    "in_tuple = [for x in [1, 2]: x]\n",
    "}\n",
);

#[test]
fn for_expressions() {
    insta::assert_snapshot!(show(FOR_EXPRESSIONS));
}

const OPERATORS_SPLATS_AND_NEGATION: &str = concat!(
    "locals {\n",
    "a = node.edge[*].address\n",
    "b = node.edge.*.address\n",
    "c = var.x ? -1 : - 2\n",
    "d = var.a-var.b\n",
    "e = !var.flag\n",
    "f = (var.a+1)*-var.b\n",
    "g = var.list[0] [1]\n",
    "h = var.n % 2 == 0 || var.n != 3\n",
    "i = [-1, -var.x, 1 - 2]\n",
    "j = length(var.list)>= 2\n",
    "k = var.some-name\n",
    "l = 1.5e3\n",
    "}\n",
);

#[test]
fn operators_splats_and_negation() {
    insta::assert_snapshot!(show(OPERATORS_SPLATS_AND_NEGATION));
}

const HEREDOCS_ARE_UNTOUCHED: &str = concat!(
    "node \"a\" {\n",
    "script = <<EOT\n",
    "  keep   this   \n",
    "\n",
    "\n",
    "\n",
    "   ${var.x}   \n",
    "EOT\n",
    "    indented = <<-EOT\n",
    "        two\n",
    "      one\n",
    "    EOT\n",
    "  after = 1\n",
    "  call = format(<<EOT\n",
    "%s\n",
    "EOT\n",
    ", \"x\")\n",
    "}\n",
);

#[test]
fn heredocs_are_untouched() {
    insta::assert_snapshot!(show(HEREDOCS_ARE_UNTOUCHED));
}

const COMMENTS_EVERYWHERE: &str = concat!(
    "# leading comment   \n",
    "// slash comment\n",
    "/* block\n",
    "   comment   \n",
    "*/\n",
    "node \"a\" { # after the brace\n",
    "  # inside\n",
    "  image = \"host\" # trailing\n",
    "  cpus = 2 // trailing slash\n",
    "  memory = /* inline */ \"1G\"\n",
    "  labels = {\n",
    "    # in a map\n",
    "    a = 1 # one\n",
    "    bbb = 2 # two\n",
    "  }\n",
    "  list = [ # opens\n",
    "    1, /* one */\n",
    "  ]\n",
    "  # before the close\n",
    "} # after the close\n",
    "# at the end\n",
);

#[test]
fn comments_everywhere() {
    insta::assert_snapshot!(show(COMMENTS_EVERYWHERE));
}

#[test]
fn crlf_becomes_lf() {
    let src = "node \"a\" {\r\n  image=\"host\"\r\n  cpus = 1\r\n}\r\n";
    let out = fmt(src);
    assert!(!out.contains('\r'));
    insta::assert_snapshot!(out);
}

const BLANK_LINES: &str = concat!(
    "\n",
    "\n",
    "node \"a\" {\n",
    "\n",
    "\n",
    "  image = \"host\"\n",
    "\n",
    "\n",
    "\n",
    "  cpus = 1\n",
    "\n",
    "}\n",
    "\n",
    "\n",
    "\n",
    "network \"b\" {}\n",
    "\n",
    "\n",
);

#[test]
fn blank_lines() {
    insta::assert_snapshot!(show(BLANK_LINES));
}

const STRINGS_ARE_UNTOUCHED: &str = concat!(
    "locals {\n",
    "a = \"  spaces   inside  \"\n",
    "b = \"${ var.x }-${var.y}\"\n",
    "c = \"escaped \\\" quote = { [ # not a comment\"\n",
    "d = \"$${literal} %%{also}\"\n",
    "e = \"%{ if var.x }yes%{ else }no%{ endif }\"\n",
    "f = \"${ {a = \"}\"}.a }\"\n",
    "}\n",
);

#[test]
fn strings_are_untouched() {
    insta::assert_snapshot!(show(STRINGS_ARE_UNTOUCHED));
}

#[test]
fn full_sample_testbed() {
    insta::assert_snapshot!(fmt(SAMPLE));
}

#[test]
fn formatted_input_is_unchanged() {
    let once = fmt(SAMPLE);
    assert_eq!(fmt(&once), once);
    let tidy = "node \"a\" {\n  image = \"host\"\n  cpus  = 1\n}\n";
    assert_eq!(fmt(tidy), tidy);
    assert!(is_formatted(tidy).unwrap());
    assert!(!is_formatted("node \"a\" {\n  cpus=1\n}\n").unwrap());
}

#[test]
fn empty_and_comment_only_files() {
    assert_eq!(fmt(""), "");
    assert_eq!(fmt("\n\n  \n"), "");
    assert_eq!(fmt("# just a comment"), "# just a comment\n");
    assert_eq!(fmt("a=1"), "a = 1\n");
    assert_eq!(fmt("a = 1\n\n\n"), "a = 1\n");
}

#[test]
fn trailing_whitespace_and_tabs() {
    let out = fmt("node \"a\" {\t\n\timage = \"host\"   \n  cpus\t=\t1  # c  \n}   ");
    assert_eq!(
        out,
        "node \"a\" {\n  image = \"host\"\n  cpus  = 1 # c\n}\n"
    );
}

#[test]
fn function_namespaces_and_legacy_index() {
    let out = fmt("a = provider :: tg :: f( 1 )\nb = var.list.0.name\n");
    assert_eq!(out, "a = provider::tg::f(1)\nb = var.list.0.name\n");
}

#[test]
fn syntax_errors_carry_their_location() {
    let err = format_source("node \"a\" {\n  image = \n}\n").unwrap_err();
    assert_eq!(err.kind, FormatErrorKind::Syntax);
    assert_eq!((err.line, err.column), (2, 11));
    assert!(!err.message.is_empty());

    let err = format_source("node \"a\" {\n  image = \"host\"\n").unwrap_err();
    assert_eq!(err.line, 2);

    let err = format_source("a = 1\nb = \"unterminated\n").unwrap_err();
    assert_eq!(err.line, 2);
    assert_eq!(
        err.to_string(),
        format!("2:{}: {}", err.column, err.message)
    );

    let err = format_source("x = <<EOT\nno end\n").unwrap_err();
    assert_eq!(err.kind, FormatErrorKind::Syntax);

    // Two attributes in a one-line block is not HCL.
    let err = format_source("host \"a\" { a = 1  b = 2 }\n").unwrap_err();
    assert_eq!(err.line, 1);
}

#[test]
fn self_check_refuses_output_that_differs() {
    let src = "a = 1 # keep me\nb = [1, 2]\n";
    let tokens = lex(src).unwrap();
    let body = || parse(src).unwrap();
    assert!(verify(src, &tokens, body(), "a = 1 # keep me\nb = [1, 2]\n").is_ok());
    for bad in [
        "a = 1\nb = [1, 2]\n",           // the comment is gone
        "a = 1 # keep me\nb = [1, 3]\n", // a value changed
        "a = 1 # keep me\nb = [1, 2\n",  // a bracket is gone
    ] {
        let err = verify(src, &tokens, body(), bad).unwrap_err();
        assert_eq!(err.kind, FormatErrorKind::Internal);
        assert!(
            err.message.starts_with("internal formatter error: "),
            "{bad:?}: {}",
            err.message
        );
    }
    // Same tokens, but a lost line break makes it invalid.
    let src = "a = 1\nb = 2\n";
    let tokens = lex(src).unwrap();
    let err = verify(src, &tokens, parse(src).unwrap(), "a = 1 b = 2\n").unwrap_err();
    assert_eq!(err.kind, FormatErrorKind::Internal);
    assert!(err.message.contains("does not parse"), "{}", err.message);
}

#[test]
fn crlf_error_location_matches_the_file() {
    let err = format_source("a = 1\r\nb = )\r\n").unwrap_err();
    assert_eq!((err.line, err.column), (2, 5));
}

/// Inputs of the snapshot tests, reused by the property tests.
const CORPUS: &[&str] = &[
    MESSY_SPACING,
    ALIGNMENT_RUNS_BROKEN_BY_BLANK_LINES_AND_COMMENTS,
    MULTI_LINE_VALUE_BREAKS_THE_RUN,
    NESTED_BLOCKS,
    ONE_LINE_BLOCKS,
    MULTI_LINE_MAPS_AND_LISTS,
    FOR_EXPRESSIONS,
    OPERATORS_SPLATS_AND_NEGATION,
    HEREDOCS_ARE_UNTOUCHED,
    COMMENTS_EVERYWHERE,
    BLANK_LINES,
    STRINGS_ARE_UNTOUCHED,
    SAMPLE,
];

const SAMPLE: &str = r#"testbed {                       # optional
  name        = "cdn-smoke"
  description = "edge + origin smoke bed"
}

variable "edge_count" {
  type        = number          # string | number | bool | list(...) | map(...)
  default     = 2
  description = "how many edges"
  sensitive   = false
  validation {
    condition     = var.edge_count > 0 && var.edge_count <= 64
    error_message = "edge_count must be 1..64"
  }
}

locals {
  image = "host"
}

profile "cdn:basic" {           # a named node spec
  image  = local.image
  cpus   = 1
  memory = "512MiB"
  labels = { tier = "cdn" }
}

network "lab" {
  cidr = "10.42.0.0/24"         # optional: omitted = a free /24 picked at plan time
  nat  = false                  # egress to the host's outside world; default false
}

node "edge" {
  count    = var.edge_count     # or for_each = toset([...]) / a map
  profile  = "cdn:basic"        # or image = "...", cpus, memory directly
  network  = network.lab        # or networks = [network.lab, network.mgmt]
  platform = "netns"            # optional: omitted = tg picks a platform that fits
  labels   = { role = "edge" }  # become Ansible groups
}

node "origin" {
  image   = "host"
  network = network.lab
  address = cidrhost(network.lab.cidr, 10)   # optional fixed address
  depends_on = [node.edge]
}

package "fleche" {
  version = "16.3-1"            # exact version; omitted = newest
  source  = "apt"               # "apt" (default) | deb = "path/to/file.deb"
  on      = [node.edge]         # where it is installed
}

package "nginx" {
  requires {                    # no `on`: tg allocates a node that fits
    profile = "cdn:basic"
  }
}

output "edge_addresses" {
  value       = node.edge[*].address
  description = "edge IPs"
}

platform "ssh" "pool-a" {       # shared remote hosts (the pool)
  user          = "root"
  identity_file = "~/.ssh/id_ed25519"
  known_hosts   = "~/.ssh/known_hosts"
  host "edge-1" { address = "192.0.2.10" }
}

state {                         # optional; default: sqlite at .tg/state.db
  backend = "postgres"          # "sqlite" | "postgres"
  url     = env("TG_PG_URL")
}
"#;

// ---- property tests ----------------------------------------------

proptest! {
    // 256 cases each by default; `PROPTEST_CASES=20000` for a long run.
    #![proptest_config(ProptestConfig::default())]

    /// Any text: an answer (formatted text or an error), never a panic.
    #[test]
    fn never_panics_on_arbitrary_text(src in ".{0,200}") {
        let _ = format_source(&src);
    }

    /// HCL-ish noise reaches deeper into the lexer than random text.
    #[test]
    fn never_panics_on_hcl_like_text(
        src in r#"([a-z]{1,3}|[ \t\n]|[{}\[\]()=,.:?!<>*/%+-]|"|#|//|/\*|\*/|<<-?EOT\n|\n *EOT|\$\{|%\{|[0-9.e]{1,3}|\r\n){0,60}"#
    ) {
        if let Ok(out) = format_source(&src) {
            prop_assert_eq!(format_source(&out).ok(), Some(out.clone()));
        }
    }

    /// Formatting does not depend on the input's spacing: indentation,
    /// runs of spaces, trailing whitespace, the number of blank lines and
    /// CRLF are all undone.
    #[test]
    fn layout_ignores_the_input_spacing(
        which in 0..CORPUS.len(),
        rolls in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        let src = CORPUS[which];
        let respaced = perturb(src, &rolls);
        prop_assert_eq!(format_source(&respaced), format_source(src), "--- respaced\n{}", respaced);
    }

    /// Generated testbeds: formatting succeeds (so the self-check found
    /// the same tokens and the same meaning) and is idempotent.
    #[test]
    fn generated_testbeds_format_idempotently(src in testbed()) {
        let once = format_source(&src);
        prop_assert!(once.is_ok(), "{:?}\n--- input\n{}", once, src);
        let once = once.unwrap_or_default();
        prop_assert_eq!(format_source(&once).ok(), Some(once.clone()));
    }
}

#[test]
fn perturb_really_respaces() {
    for src in CORPUS {
        let respaced = perturb(src, &[4, 5, 200, 3, 17]);
        assert_ne!(&respaced, src);
        assert_eq!(format_source(&respaced), format_source(src));
    }
}

/// Re-space `src` at random without changing its meaning.
fn perturb(src: &str, rolls: &[u8]) -> String {
    let text = src.replace("\r\n", "\n");
    let tokens = lex(&text).expect("corpus lexes");
    let mut roll = rolls.iter().copied().cycle();
    let mut next = move || roll.next().unwrap_or(0);
    let spaces = |n: u8| -> String {
        (0..n)
            .map(|i| if i % 3 == 2 { '\t' } else { ' ' })
            .collect()
    };
    let newline = if next() % 4 == 0 { "\r\n" } else { "\n" };
    let mut out = String::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let gap = &text[if i == 0 { 0 } else { tokens[i - 1].end }..t.start];
        if t.kind == Kind::Newline {
            out.push_str(&spaces(next() % 3));
            let run = tokens[i..]
                .iter()
                .take_while(|t| t.kind == Kind::Newline)
                .count();
            let emit = if run == 1 {
                1
            } else {
                2 + usize::from(next() % 3)
            };
            out.push_str(&newline.repeat(emit));
            i += run;
            if let Some(t) = tokens.get(i) {
                out.push_str(&spaces(next() % 7));
                out.push_str(&text[t.start..t.end]);
                i += 1;
            }
            continue;
        }
        if i == 0 {
            out.push_str(&spaces(next() % 7));
        } else if !gap.is_empty() {
            out.push_str(&spaces(1 + next() % 3));
        }
        out.push_str(&text[t.start..t.end]);
        i += 1;
    }
    out
}

fn ws() -> impl Strategy<Value = String> {
    prop_oneof![Just(""), Just(" "), Just("   "), Just("\t")].prop_map(String::from)
}

fn sep() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("\n"),
        1 => Just("\n\n"),
        1 => Just("\n\n\n  \n"),
        1 => Just("  # note\n"),
        1 => Just(" // note \n"),
        1 => Just("\r\n"),
        1 => Just("\n/* multi\n  line */\n"),
    ]
    .prop_map(String::from)
}

fn key() -> impl Strategy<Value = String> {
    "[a-z][a-z_-]{0,12}"
}

fn expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        "-?[0-9]{1,4}",
        "\"[a-z ${}%]{0,10}\""
            .prop_filter("valid template", |s| !s.contains("${") && !s.contains("%{")),
        Just("var.edge_count".to_string()),
        Just("node.edge[*].address".to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
        Just("\"${var.x}-y\"".to_string()),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            (
                proptest::collection::vec(inner.clone(), 0..4),
                ws(),
                any::<bool>()
            )
                .prop_map(|(items, w, multi)| {
                    if multi {
                        format!(
                            "[\n{}\n]",
                            items
                                .iter()
                                .map(|i| format!("{w}{i},"))
                                .collect::<Vec<_>>()
                                .join("\n")
                        )
                    } else {
                        format!("[{w}{}{w}]", items.join(&format!("{w},{w}")))
                    }
                }),
            (
                proptest::collection::vec((key(), inner.clone()), 0..4),
                ws(),
                any::<bool>()
            )
                .prop_map(|(items, w, multi)| {
                    let items: Vec<String> = items
                        .iter()
                        .enumerate()
                        .map(|(n, (k, v))| format!("{k}_{n}{w}={w}{v}"))
                        .collect();
                    if multi {
                        format!("{{\n{}\n}}", items.join("\n"))
                    } else {
                        format!("{{{w}{}{w}}}", items.join(", "))
                    }
                }),
            (inner.clone(), inner.clone(), ws()).prop_map(|(a, b, w)| format!("({a}){w}+{w}({b})")),
            (inner.clone(), ws()).prop_map(|(a, w)| format!("length({w}{a}{w})")),
            (inner.clone(), inner, ws())
                .prop_map(|(a, b, w)| format!("var.flag{w}?{w}({a}){w}:{w}({b})")),
        ]
    })
}

fn attribute() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        6 => expr(),
        1 => Just("<<EOT\n  raw   text  \n\n\nEOT\n".to_string()),
        1 => Just("<<-EOT\n    indented\n  EOT\n".to_string()),
    ];
    (ws(), key(), ws(), ws(), value, sep()).prop_map(|(i, k, a, b, v, s)| {
        // A heredoc ends its own line; anything else needs a separator.
        let s = if v.ends_with('\n') {
            s.trim_start_matches(['\n', '\r']).to_string()
        } else {
            s
        };
        let s = if v.ends_with('\n') && !s.is_empty() && !s.starts_with('\n') {
            format!("\n{s}")
        } else {
            s
        };
        format!("{i}{k}_KEY{a}={b}{v}{s}")
    })
}

fn block() -> impl Strategy<Value = String> {
    let leaf = (
        key(),
        proptest::collection::vec("\"[a-z:-]{0,8}\"", 0..3),
        ws(),
        proptest::collection::vec(attribute(), 0..6),
        sep(),
    )
        .prop_map(|(t, labels, w, attrs, s)| {
            format!(
                "{t}{w}{}{w}{{\n{}}}{s}",
                labels.join(" "),
                unique_keys(attrs)
            )
        });
    leaf.prop_recursive(2, 8, 3, |inner| {
        (
            key(),
            proptest::collection::vec(prop_oneof![attribute(), inner], 0..5),
            sep(),
        )
            .prop_map(|(t, items, s)| format!("{t} {{\n{}}}{s}", unique_keys(items)))
    })
}

/// Attribute names must be unique within a body: number them.
fn unique_keys(items: Vec<String>) -> String {
    items
        .iter()
        .enumerate()
        .map(|(n, item)| item.replacen("_KEY", &format!("_{n}"), 1))
        .collect()
}

fn testbed() -> impl Strategy<Value = String> {
    proptest::collection::vec(prop_oneof![block(), attribute()], 0..6).prop_map(unique_keys)
}
