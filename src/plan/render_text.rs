//! The human plan: Terraform's layout, for terminals and logs.
//!
//! Pure functions from a [`Plan`] to a `String`; colour (ANSI) only when the
//! caller says so. Multi-line values are diffed line by line with `similar`.
//! Sensitive values show as `(sensitive value)`, and control and
//! bidirectional characters in values as escapes ([`super::redact`]).

use std::fmt::Write as _;

use serde_json::Value;

use super::redact::{self, SENSITIVE};
use super::{spec_attributes, Action, DriftKind, Plan, ReplaceReason, ResourceChange};
use crate::platform::Spec;

/// What a hidden value is replaced with before rendering: a string no
/// testbed writes by accident, printed as [`SENSITIVE`] (unquoted).
const HIDDEN: &str = "\u{0}tg:sensitive\u{0}";

/// The sensitive paths of `before` and `after` of a change: `before` is
/// hidden where it was recorded sensitive and where the new value is.
fn change_paths(c: &ResourceChange) -> (Vec<String>, &[String]) {
    let mut before = c.before_sensitive.clone();
    before.extend(c.sensitive.iter().cloned());
    (before, &c.sensitive)
}

/// Rendering options.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    pub color: bool,
}

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn action(&self, a: Action, s: &str) -> String {
        match a {
            Action::Create => self.wrap("32", s),
            Action::Update => self.wrap("33", s),
            Action::Replace | Action::Delete => self.wrap("31", s),
            Action::NoOp => s.to_string(),
        }
    }
}

/// The whole plan as text, ending with the summary line.
pub fn render_plan(plan: &Plan, opts: TextOptions) -> String {
    let p = Paint { on: opts.color };
    let mut out = String::new();

    if !plan.drift.is_empty() {
        let _ = writeln!(out, "{}", p.bold("Objects have changed outside of tg"));
        out.push('\n');
        out.push_str(
            "tg detected the following changes made outside of tg since the last \"tg apply\":\n\n",
        );
        for d in &plan.drift {
            match d.kind {
                DriftKind::Deleted => {
                    let _ = writeln!(
                        out,
                        "  {}",
                        p.bold(&format!("# {} has been deleted outside tg", d.address))
                    );
                    let _ = writeln!(
                        out,
                        "  {} {} {{",
                        p.action(Action::Delete, "-"),
                        resource_header(&d.address)
                    );
                    out.push_str("    }\n\n");
                }
                DriftKind::Changed => {
                    let _ = writeln!(
                        out,
                        "  {}",
                        p.bold(&format!("# {} has changed outside tg", d.address))
                    );
                    let _ = writeln!(
                        out,
                        "  {} {} {{",
                        p.action(Action::Update, "~"),
                        resource_header(&d.address)
                    );
                    if let Some(after) = &d.after {
                        // Hidden where the instance's change hides either side.
                        let paths: Vec<String> = plan
                            .changes
                            .iter()
                            .filter(|c| c.address == d.address)
                            .flat_map(|c| c.before_sensitive.iter().chain(&c.sensitive))
                            .cloned()
                            .collect();
                        attribute_lines(
                            &mut out,
                            &p,
                            Action::Update,
                            Some(&d.before),
                            Some(after),
                            &[],
                            (&paths, &paths),
                        );
                    }
                    out.push_str("    }\n\n");
                }
            }
        }
        if plan.refresh_only {
            out.push_str(
                "This is a refresh-only plan, so tg will not take any actions to undo these. Apply it to record the updated values in the session's state without changing any object.\n",
            );
        } else {
            out.push_str(
                "Unless you have made equivalent changes to your configuration, the plan below will undo them.\n\n",
            );
        }
    }

    for w in &plan.warnings {
        let _ = writeln!(
            out,
            "{} {}",
            p.wrap("33", "warning:"),
            redact::escape(w, &[])
        );
    }
    if !plan.warnings.is_empty() {
        out.push('\n');
    }

    if plan.refresh_only {
        if plan.drift.is_empty() {
            let _ = writeln!(
                out,
                "{} The recorded state matches what the platforms see.",
                p.bold("No changes.")
            );
        } else {
            let _ = writeln!(
                out,
                "\n{} {} change(s) made outside tg to record.",
                p.bold("Refresh:"),
                plan.drift.len()
            );
        }
        return out;
    }
    if !plan.has_changes() {
        out.push_str(&no_changes_line(&p));
        return out;
    }

    let used: Vec<Action> = [
        Action::Create,
        Action::Update,
        Action::Replace,
        Action::Delete,
    ]
    .into_iter()
    .filter(|a| plan.changes.iter().any(|c| c.action == *a))
    .collect();
    if !used.is_empty() {
        // Not for a plan that only moves.
        out.push_str(
            "tg used the selected platforms to generate the following execution plan. Resource actions are indicated with the following symbols:\n",
        );
    }
    for a in &used {
        let a = *a;
        let (sym, text) = match a {
            Action::Create => ("  +", "create"),
            Action::Update => ("  ~", "update in-place"),
            Action::Replace => ("-/+", "destroy and then create replacement"),
            Action::Delete => ("  -", "destroy"),
            Action::NoOp => continue,
        };
        let _ = writeln!(out, "{} {text}", p.action(a, sym));
    }
    if !used.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "tg will perform the following actions:");
    out.push('\n');

    // Moved instances are shown even when nothing else changes.
    let mut changes: Vec<&ResourceChange> = plan
        .changes
        .iter()
        .filter(|c| c.action.is_change() || plan.moved_from(&c.address).is_some())
        .collect();
    changes.sort_by(|a, b| a.address.cmp(&b.address));
    let gone: std::collections::BTreeSet<_> = plan
        .drift
        .iter()
        .filter(|d| d.kind == DriftKind::Deleted)
        .map(|d| &d.address)
        .collect();
    for c in changes {
        render_change(
            &mut out,
            &p,
            c,
            gone.contains(&c.address),
            plan.moved_from(&c.address),
        );
    }

    out.push_str(&summary_line(plan, p.on));
    out
}

/// `No changes. Your testbed matches the recorded state.` (plus newline).
fn no_changes_line(p: &Paint) -> String {
    format!(
        "{} Your testbed matches the recorded state.\n",
        p.bold("No changes.")
    )
}

/// `Plan: N to add, N to change, N to destroy.` (plus newline).
pub fn summary_line(plan: &Plan, color: bool) -> String {
    let s = plan.summary();
    format!(
        "{} {} to add, {} to change, {} to destroy.\n",
        Paint { on: color }.bold("Plan:"),
        s.add,
        s.change,
        s.destroy
    )
}

fn resource_header(addr: &crate::addrs::InstanceAddr) -> String {
    format!("{} \"{}\"", addr.kind(), addr.name())
}

fn render_change(
    out: &mut String,
    p: &Paint,
    c: &ResourceChange,
    was_gone: bool,
    moved_from: Option<&crate::addrs::InstanceAddr>,
) {
    if let (Action::NoOp, Some(from)) = (c.action, moved_from) {
        let _ = writeln!(
            out,
            "  {}",
            p.bold(&format!("# {from} has moved to {}", c.address))
        );
        let _ = writeln!(out, "    {} {{", resource_header(&c.address));
        let (before_paths, after_paths) = change_paths(c);
        attribute_lines(
            out,
            p,
            c.action,
            c.before.as_ref(),
            c.after.as_ref(),
            &[],
            (&before_paths, after_paths),
        );
        out.push_str("    }\n\n");
        return;
    }
    let what = match c.action {
        Action::Create if was_gone => "will be created (it was deleted outside tg)".to_string(),
        Action::Create => "will be created".to_string(),
        Action::Update => "will be updated in-place".to_string(),
        Action::Replace => {
            if c.replace_reasons.contains(&ReplaceReason::Tainted) {
                "is tainted, so it must be replaced".to_string()
            } else if c.replace_reasons.contains(&ReplaceReason::Requested) {
                "will be replaced, as requested".to_string()
            } else {
                "must be replaced".to_string()
            }
        }
        Action::Delete => "will be destroyed".to_string(),
        Action::NoOp => return,
    };
    let _ = writeln!(out, "  {}", p.bold(&format!("# {} {what}", c.address)));
    if let Some(from) = moved_from {
        let _ = writeln!(out, "  # (moved from {from})");
    }
    for r in &c.replace_reasons {
        if let ReplaceReason::Platform { .. } = r {
            let _ = writeln!(out, "  # (because {r})");
        }
    }
    if c.action == Action::Delete && c.after.is_none() && c.before.is_none() {
        return;
    }
    let sym = match c.action {
        Action::Replace => "-/+".to_string(),
        a => format!("  {}", a.symbol()),
    };
    let _ = writeln!(
        out,
        "{} {} {{",
        p.action(c.action, &sym),
        resource_header(&c.address)
    );
    let forced: Vec<&str> = c
        .replace_reasons
        .iter()
        .filter_map(|r| match r {
            ReplaceReason::Attribute { attribute } => Some(attribute.as_str()),
            _ => None,
        })
        .collect();
    let (before_paths, after_paths) = change_paths(c);
    attribute_lines(
        out,
        p,
        c.action,
        c.before.as_ref(),
        c.after.as_ref(),
        &forced,
        (&before_paths, after_paths),
    );
    out.push_str("    }\n\n");
}

/// The attribute lines of a change; `paths` are the sensitive paths of
/// `before` and `after`. Changes are found on the values, shown masked.
fn attribute_lines(
    out: &mut String,
    p: &Paint,
    action: Action,
    before: Option<&Spec>,
    after: Option<&Spec>,
    forced: &[&str],
    paths: (&[String], &[String]),
) {
    let b = before.map(spec_attributes).unwrap_or_default();
    let a = after.map(spec_attributes).unwrap_or_default();
    let (mb, ma) = (masked(&b, paths.0), masked(&a, paths.1));
    let mut keys: Vec<&String> = a.keys().collect();
    for k in b.keys() {
        if !a.contains_key(k) {
            keys.push(k);
        }
    }
    let width = keys.iter().map(|k| k.len()).max().unwrap_or(0);
    let mut unchanged = 0;
    for k in keys {
        let (bv, av) = (b.get(k), a.get(k));
        match action {
            Action::Create => {
                if let Some(v) = ma.get(k) {
                    if v.is_null() {
                        continue;
                    }
                    let _ = writeln!(
                        out,
                        "      {} {k:width$} = {}",
                        p.action(Action::Create, "+"),
                        indent_value(v, 8)
                    );
                }
            }
            Action::Delete => {
                if let Some(v) = mb.get(k) {
                    if v.is_null() {
                        continue;
                    }
                    let _ = writeln!(
                        out,
                        "      {} {k:width$} = {} -> null",
                        p.action(Action::Delete, "-"),
                        indent_value(v, 8)
                    );
                }
            }
            _ => {
                if bv == av {
                    unchanged += 1;
                    continue;
                }
                let mark = if forced.contains(&k.as_str()) {
                    format!(" {}", p.action(Action::Replace, "# forces replacement"))
                } else {
                    String::new()
                };
                let null = Value::Null;
                let bv = mb.get(k).unwrap_or(&null);
                let av = ma.get(k).unwrap_or(&null);
                if is_multiline(bv) || is_multiline(av) {
                    let _ = writeln!(
                        out,
                        "      {} {k:width$} = (changed){mark}",
                        p.action(Action::Update, "~"),
                    );
                    diff_lines(out, p, &pretty(bv), &pretty(av));
                } else {
                    let _ = writeln!(
                        out,
                        "      {} {k:width$} = {} -> {}{mark}",
                        p.action(Action::Update, "~"),
                        scalar(bv),
                        scalar(av)
                    );
                }
            }
        }
    }
    if unchanged > 0 {
        let _ = writeln!(
            out,
            "        # ({unchanged} unchanged attribute{} hidden)",
            if unchanged == 1 { "" } else { "s" }
        );
    }
}

/// `m` with the values at `paths` replaced by [`HIDDEN`].
fn masked<'a>(
    m: &'a serde_json::Map<String, Value>,
    paths: &[String],
) -> std::borrow::Cow<'a, serde_json::Map<String, Value>> {
    if paths.is_empty() {
        std::borrow::Cow::Borrowed(m)
    } else {
        std::borrow::Cow::Owned(redact::mask(m, paths, &Value::String(HIDDEN.to_string())))
    }
}

fn is_multiline(v: &Value) -> bool {
    match v {
        Value::Array(a) => !a.is_empty() && scalar(v).len() > 60,
        Value::Object(o) => !o.is_empty() && scalar(v).len() > 60,
        Value::String(s) => s.contains('\n'),
        _ => false,
    }
}

/// A value on one line, written as HCL: `"a"`, `1`, `["a", "b"]`, `{ k = "v" }`.
fn scalar(v: &Value) -> String {
    match v {
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(scalar).collect::<Vec<_>>().join(", ")),
        Value::Object(o) if o.is_empty() => "{}".into(),
        Value::Object(o) => format!(
            "{{ {} }}",
            o.iter()
                .map(|(k, v)| format!("{} = {}", hcl_key(k), scalar(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::String(s) if s == HIDDEN => SENSITIVE.to_string(),
        other => {
            redact::escape(&serde_json::to_string(other).unwrap_or_default(), &[]).into_owned()
        }
    }
}

/// A value over several lines, written as HCL with aligned `=`.
fn pretty(v: &Value) -> String {
    match v {
        Value::String(s) if s.contains('\n') => redact::escape(s, &['\n', '\t']).into_owned(),
        _ => hcl_block(v, 0),
    }
}

fn hcl_key(k: &str) -> String {
    let ident = k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ident {
        k.to_string()
    } else {
        redact::escape(&serde_json::to_string(k).unwrap_or_default(), &[]).into_owned()
    }
}

fn hcl_block(v: &Value, indent: usize) -> String {
    let pad = " ".repeat(indent + 2);
    let end = " ".repeat(indent);
    match v {
        Value::Array(a) if !a.is_empty() && scalar(v).len() > 60 => {
            let items: Vec<String> = a
                .iter()
                .map(|x| format!("{pad}{},", hcl_block(x, indent + 2)))
                .collect();
            format!("[\n{}\n{end}]", items.join("\n"))
        }
        Value::Object(o) if !o.is_empty() && scalar(v).len() > 60 => {
            let width = o.keys().map(|k| hcl_key(k).len()).max().unwrap_or(0);
            let items: Vec<String> = o
                .iter()
                .map(|(k, x)| format!("{pad}{:width$} = {}", hcl_key(k), hcl_block(x, indent + 2)))
                .collect();
            format!("{{\n{}\n{end}}}", items.join("\n"))
        }
        other => scalar(other),
    }
}

/// A value as HCL: on one line when short, else over several lines
/// indented by `indent` after the first.
pub(crate) fn indent_value(v: &Value, indent: usize) -> String {
    let s = if is_multiline(v) {
        pretty(v)
    } else {
        scalar(v)
    };
    s.replace('\n', &format!("\n{}", " ".repeat(indent)))
}

fn diff_lines(out: &mut String, p: &Paint, before: &str, after: &str) {
    let diff = similar::TextDiff::from_lines(before, after);
    for change in diff.iter_all_changes() {
        let line = change.value().trim_end_matches('\n');
        let (sign, a) = match change.tag() {
            similar::ChangeTag::Delete => ("-", Action::Delete),
            similar::ChangeTag::Insert => ("+", Action::Create),
            similar::ChangeTag::Equal => (" ", Action::NoOp),
        };
        let _ = writeln!(out, "          {} {line}", p.action(a, sign));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{NetworkSpec, NodeSpec};

    fn node(image: &str, labels: &[(&str, &str)]) -> Spec {
        Spec::Node(NodeSpec {
            settings: Default::default(),
            host: None,
            hostname: "edge-0".into(),
            image: image.into(),
            cpus: None,
            memory_mib: Some(512),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            interfaces: vec![],
        })
    }

    fn change(action: Action, before: Option<Spec>, after: Option<Spec>) -> ResourceChange {
        ResourceChange {
            address: "node.edge[0]".parse().unwrap(),
            action,
            platform: "double".into(),
            before,
            after,
            replace_reasons: vec![],
            depends_on: vec![],
            attributes: Value::Null,
            sensitive: vec![],
            before_sensitive: vec![],
        }
    }

    fn plan(changes: Vec<ResourceChange>) -> Plan {
        Plan {
            session: "default".into(),
            lineage: "l".into(),
            serial: 1,
            testbed_hash: "h".into(),
            tg_version: "0".into(),
            destroy: false,
            refresh_only: false,
            targeted: false,
            changes,
            drift: vec![],
            warnings: vec![],
            outputs: Default::default(),
            moves: Vec::new(),
        }
    }

    #[test]
    fn no_changes_says_so() {
        let text = render_plan(&plan(vec![]), TextOptions::default());
        assert_eq!(
            text,
            "No changes. Your testbed matches the recorded state.\n"
        );
    }

    #[test]
    fn replace_marks_the_forcing_attribute() {
        let mut c = change(
            Action::Replace,
            Some(node("host", &[])),
            Some(node("debian:bookworm", &[("role", "edge")])),
        );
        c.replace_reasons.push(ReplaceReason::Attribute {
            attribute: "image".into(),
        });
        let text = render_plan(&plan(vec![c]), TextOptions::default());
        assert!(
            text.contains("  # node.edge[0] must be replaced\n-/+ node \"edge\" {\n"),
            "{text}"
        );
        assert!(
            text.contains("~ image      = \"host\" -> \"debian:bookworm\" # forces replacement"),
            "{text}"
        );
        assert!(
            text.contains("~ labels     = {} -> { role = \"edge\" }\n"),
            "{text}"
        );
        assert!(
            text.ends_with("Plan: 1 to add, 0 to change, 1 to destroy.\n"),
            "{text}"
        );
    }

    #[test]
    fn create_lists_attributes_and_colour_is_optional() {
        let c = change(
            Action::Create,
            None,
            Some(Spec::Network(NetworkSpec {
                name: "lab".into(),
                cidr: "10.0.0.0/24".parse().unwrap(),
                gateway: "10.0.0.1".parse().unwrap(),
                nat: false,
                hosts: Vec::new(),
            })),
        );
        let text = render_plan(&plan(vec![c.clone()]), TextOptions::default());
        assert!(text.contains("+ cidr    = \"10.0.0.0/24\""), "{text}");
        assert!(!text.contains('\x1b'));
        let colored = render_plan(&plan(vec![c]), TextOptions { color: true });
        assert!(colored.contains("\x1b[32m+\x1b[0m"));
    }

    #[test]
    fn a_move_with_nothing_else_to_change_is_shown() {
        let c = change(
            Action::NoOp,
            Some(node("host", &[])),
            Some(node("host", &[])),
        );
        let mut p = plan(vec![c]);
        p.moves.push(crate::state::moves::Renamed {
            from: "node.rim[0]".parse().unwrap(),
            to: "node.edge[0]".parse().unwrap(),
        });
        let text = render_plan(&p, TextOptions::default());
        assert!(
            text.contains(
                "  # node.rim[0] has moved to node.edge[0]\n    node \"edge\" {\n        # (6 unchanged attributes hidden)\n    }\n"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("Plan: 0 to add, 0 to change, 0 to destroy.\n"),
            "{text}"
        );
    }
}
