//! The messages style guide (docs/messages.md), checked: every error,
//! warning and help written in `src/` starts lowercase and ends without a
//! period, and the messages this guide changed read as it says.

use std::path::Path;

use crate::engine::Bed;

/// Where a message literal starts: the call, then an optional `format!(`.
const OPENERS: &[&str] = &[
    "Diagnostic::error(",
    "Diagnostic::warning(",
    "report::fail(",
    "#[error(",
    "PlatformError::new(",
    ".help(",
    "OpsError::Usage(",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The string literal at the start of `rest` (after blanks and a
/// `format!(`), if there is one.
fn literal(rest: &str) -> Option<&str> {
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("format!(").unwrap_or(rest).trim_start();
    let body = rest.strip_prefix('"')?;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(&body[..i]),
            _ => escaped = false,
        }
    }
    None
}

/// What is wrong with one message, if anything.
fn breaks_the_guide(msg: &str) -> Option<&'static str> {
    let first_word: String = msg.chars().take_while(|c| c.is_alphanumeric()).collect();
    let acronym = first_word.len() > 1 && first_word.chars().all(|c| c.is_ascii_uppercase());
    if msg.starts_with(|c: char| c.is_ascii_uppercase()) && !acronym {
        return Some("starts with an uppercase letter");
    }
    if msg.ends_with('.') && !msg.ends_with("...") {
        return Some("ends with a period");
    }
    None
}

#[test]
fn every_message_in_the_source_follows_the_style_guide() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    let mut checked = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for opener in OPENERS {
            for (at, _) in text.match_indices(opener) {
                let Some(msg) = literal(&text[at + opener.len()..]) else {
                    continue;
                };
                checked += 1;
                if let Some(why) = breaks_the_guide(msg) {
                    let line = text[..at].lines().count();
                    found.push(format!(
                        "{}:{line}: {why}: {msg:?}",
                        f.strip_prefix(&src).unwrap().display()
                    ));
                }
            }
        }
    }
    assert!(
        checked > 300,
        "only {checked} messages found: is the scan broken?"
    );
    assert!(
        found.is_empty(),
        "see docs/messages.md:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_sees_what_breaks_the_guide() {
    assert_eq!(
        breaks_the_guide("Cannot read the file."),
        Some("starts with an uppercase letter")
    );
    assert_eq!(
        breaks_the_guide("cannot read the file."),
        Some("ends with a period")
    );
    assert_eq!(breaks_the_guide("NAT needs an uplink: see ..."), None);
    assert_eq!(breaks_the_guide("`node.a` is moved twice"), None);
    assert_eq!(
        literal(" format!(\n  \"a \\\"b\\\" c\", x)"),
        Some("a \\\"b\\\" c")
    );
}

#[test]
fn messages_say_what_to_do_next() {
    let bed = Bed::new("node \"a\" {\n  image    = \"host\"\n  platform = \"double\"\n}\n");
    bed.tg(&["session", "new", "ci-1"]).expect_code(0);
    let r = bed.tg(&["session", "new", "ci-1"]);
    r.expect_code(1);
    assert_eq!(
        r.stderr(),
        "error: session `ci-1` already exists: use it with `-session ci-1`, or pick another name\n"
    );
    let r = bed.tg(&["-session", "ci-1", "force-unlock", "0000"]);
    r.expect_code(1);
    assert_eq!(
        r.stderr(),
        "error: session `ci-1` is not locked: there is nothing to unlock\n"
    );
    let r = bed.tg(&["state", "rm"]);
    r.expect_code(1);
    assert_eq!(
        r.stderr(),
        "error: `tg state rm` needs at least one address: name an instance (`node.edge[0]`) or a resource (`node.edge`); `tg state list` shows them\n"
    );
}

#[test]
fn a_lock_refusal_names_the_way_out() {
    let e = tg::state::StateError::Locked {
        session: "s".into(),
        holder: tg::state::LockInfo {
            id: "L1".into(),
            session: "s".into(),
            operation: "apply".into(),
            user: "ci".into(),
            host: "h".into(),
            pid: 7,
            created_at: "2026-12-02T07:00:00Z".into(),
        },
    };
    assert_eq!(
        e.to_string(),
        "session `s` is locked by apply (lock id `L1`, ci@h pid 7, since 2026-12-02T07:00:00Z): wait for it to finish, or run `tg force-unlock L1` if that process is gone"
    );
}
