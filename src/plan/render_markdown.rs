//! The plan as a pull-request comment (`tg plan -format markdown`).
//!
//! A summary table of counts, a list of instances per action, then the text
//! plan inside a collapsed `<details>` block as a ```diff code block. The
//! whole comment stays under [`MAX_CHARS`] (GitHub refuses comments over
//! 65,536 characters); when the diff does not fit it is cut, with a note.
//! The code fence is longer than any run of backticks in the plan, so no
//! value can close it and write markdown of its own into the comment;
//! sensitive values are hidden as in the text plan.

use std::fmt::Write as _;

use super::render_text::{render_plan, TextOptions};
use super::{Action, Plan};

/// Upper bound of the comment's length, in characters.
pub const MAX_CHARS: usize = 60_000;

/// Render the plan as GitHub-flavoured markdown.
pub fn render_markdown(plan: &Plan) -> String {
    render_markdown_limited(plan, MAX_CHARS)
}

/// [`render_markdown`] with an explicit limit (for tests).
pub fn render_markdown_limited(plan: &Plan, limit: usize) -> String {
    let s = plan.summary();
    let mut head = String::new();
    let title = if plan.destroy {
        "tg destroy plan"
    } else {
        "tg plan"
    };
    let _ = writeln!(head, "### {title}: session `{}`\n", plan.session);
    if !plan.has_changes() {
        head.push_str("**No changes.** The testbed matches the recorded state.\n");
    } else {
        head.push_str("| add | change | destroy |\n|---:|---:|---:|\n");
        let _ = writeln!(head, "| {} | {} | {} |\n", s.add, s.change, s.destroy);
        for (action, label) in [
            (Action::Create, "Create"),
            (Action::Update, "Update in place"),
            (Action::Replace, "Replace"),
            (Action::Delete, "Destroy"),
        ] {
            let addrs: Vec<String> = plan
                .changes
                .iter()
                .filter(|c| c.action == action)
                .map(|c| format!("`{}`", c.address))
                .collect();
            if addrs.is_empty() {
                continue;
            }
            let shown = addrs.len().min(50);
            let more = if addrs.len() > shown {
                format!(" and {} more", addrs.len() - shown)
            } else {
                String::new()
            };
            let _ = writeln!(
                head,
                "**{label}** ({}): {}{more}\n",
                addrs.len(),
                addrs[..shown].join(", ")
            );
        }
        if !plan.moves.is_empty() {
            let shown = plan.moves.len().min(50);
            let moves: Vec<String> = plan.moves[..shown]
                .iter()
                .map(|m| format!("`{}` to `{}`", m.from, m.to))
                .collect();
            let more = if plan.moves.len() > shown {
                format!(" and {} more", plan.moves.len() - shown)
            } else {
                String::new()
            };
            let _ = writeln!(
                head,
                "**Move** ({}): {}{more}\n",
                plan.moves.len(),
                moves.join(", ")
            );
        }
    }
    if !plan.drift.is_empty() {
        let _ = writeln!(
            head,
            ":warning: {} object(s) changed outside tg since the last apply.\n",
            plan.drift.len()
        );
    }
    for w in &plan.warnings {
        let _ = writeln!(head, "> warning: {w}");
    }
    if !plan.warnings.is_empty() {
        head.push('\n');
    }

    let text = render_plan(plan, TextOptions { color: false });
    let fence = "`".repeat(longest_backtick_run(&text).max(2) + 1);
    let open = format!("<details><summary>Show plan</summary>\n\n{fence}diff\n");
    let close = format!("{fence}\n\n</details>\n");
    let (open, close) = (open.as_str(), close.as_str());
    let note =
        "\n> **Note:** the plan was cut to fit in a comment; run `tg plan` to see all of it.\n";
    let body = diff_marked(&text);
    let full = head.chars().count() + open.len() + body.chars().count() + close.len();
    if full <= limit {
        return format!("{head}{open}{body}{close}");
    }
    let budget =
        limit.saturating_sub(head.chars().count() + open.len() + close.len() + note.len() + 8);
    let mut cut = String::new();
    let mut used = 0;
    for line in body.lines() {
        let n = line.chars().count() + 1;
        if used + n > budget {
            break;
        }
        cut.push_str(line);
        cut.push('\n');
        used += n;
    }
    cut.push_str("...\n");
    format!("{head}{open}{cut}{close}{note}")
}

/// The longest run of backticks in `s`.
fn longest_backtick_run(s: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        if c == '`' {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

/// Move each line's action marker to column 0 so GitHub's `diff`
/// highlighting colours it (`+`, `-`, `!` for in-place changes).
fn diff_marked(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let t = line.trim_start();
        let indent = line.len() - t.len();
        let marked = if t.starts_with("-/+ ") || t.starts_with("~ ") {
            format!("!{}{t}", " ".repeat(indent.saturating_sub(1)))
        } else if (t.starts_with("+ ") || t.starts_with("- ")) && indent > 0 {
            format!("{}{}{}", &t[..1], " ".repeat(indent - 1), &t[1..])
        } else if indent > 0 || t.is_empty() {
            line.to_string()
        } else {
            format!(" {line}")
        };
        out.push_str(&marked);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ResourceChange;
    use crate::platform::{NetworkSpec, Spec};

    fn plan(n: usize) -> Plan {
        let changes = (0..n)
            .map(|i| ResourceChange {
                address: format!("network.n{i}").parse().unwrap(),
                action: Action::Create,
                platform: "double".into(),
                before: None,
                after: Some(Spec::Network(NetworkSpec {
                    name: format!("n{i}"),
                    cidr: "10.0.0.0/24".parse().unwrap(),
                    gateway: "10.0.0.1".parse().unwrap(),
                    nat: false,
                    hosts: Vec::new(),
                })),
                replace_reasons: vec![],
                depends_on: vec![],
                attributes: serde_json::Value::Null,
                sensitive: vec![],
                before_sensitive: vec![],
            })
            .collect();
        Plan {
            session: "pr-1".into(),
            lineage: "l".into(),
            serial: 0,
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
    fn small_plans_are_whole() {
        let md = render_markdown(&plan(2));
        assert!(md.contains("| 2 | 0 | 0 |"), "{md}");
        assert!(
            md.contains("**Create** (2): `network.n0`, `network.n1`"),
            "{md}"
        );
        assert!(md.contains("<details><summary>Show plan</summary>\n\n```diff\n"));
        assert!(md.contains("\n+  network \"n0\" {\n"), "{md}");
        assert!(!md.contains("was cut"));
    }

    #[test]
    fn big_plans_are_cut_with_a_note() {
        let md = render_markdown_limited(&plan(200), 5_000);
        assert!(md.chars().count() <= 5_000, "{}", md.len());
        assert!(md.contains("the plan was cut"));
        assert!(md.contains("```\n\n</details>\n"));
    }

    #[test]
    fn moves_are_listed() {
        let mut p = plan(1);
        p.moves.push(crate::state::moves::Renamed {
            from: "node.old".parse().unwrap(),
            to: "node.new".parse().unwrap(),
        });
        let md = render_markdown(&p);
        assert!(
            md.contains("**Move** (1): `node.old` to `node.new`\n"),
            "{md}"
        );
    }
}
