//! `tg fmt`: rewrite testbed files in the canonical layout.
//!
//! This command owns which files are formatted (every `*.tg.hcl` and
//! `*.tgvars.hcl` directly in the testbed directory, or the files and
//! directories named on the command line, `-` for stdin), rewriting them in
//! place, `-check`, `-diff` and the exit code. The layout itself is
//! [`crate::format`].
//!
//! Exit codes: `0` everything formatted (or rewritten), `1` an error (a file
//! that does not parse or cannot be read or written; the other files are
//! still processed), `3` with `-check` when a file is not formatted.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::cli::args::FmtArgs;
use crate::cli::Ctx;
use crate::format::format_source;

/// The exit code of `tg fmt -check` when some file is not formatted.
pub const EXIT_UNFORMATTED: i32 = 3;

/// The name stdin goes by in messages and diffs.
const STDIN_NAME: &str = "<stdin>";

/// One thing to format.
#[derive(Debug)]
enum Target {
    Stdin,
    /// `path` is where to read and write; `name` is what to call it.
    File {
        path: PathBuf,
        name: String,
    },
}

#[derive(Debug, Default)]
struct Outcome {
    failed: bool,
    unformatted: bool,
}

pub fn run(ctx: &Ctx, args: &FmtArgs) -> i32 {
    let mut outcome = Outcome::default();
    let targets = collect_targets(ctx, &args.files, &mut outcome);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for target in &targets {
        process(ctx, args, target, &mut out, &mut outcome);
    }
    let _ = out.flush();
    if outcome.failed {
        1
    } else if args.check && outcome.unformatted {
        EXIT_UNFORMATTED
    } else {
        0
    }
}

fn collect_targets(ctx: &Ctx, files: &[PathBuf], outcome: &mut Outcome) -> Vec<Target> {
    if files.is_empty() {
        return match testbed_files(&ctx.dir) {
            Ok(names) => names
                .into_iter()
                .map(|name| Target::File {
                    path: ctx.dir.join(&name),
                    name,
                })
                .collect(),
            Err(e) => {
                eprintln!(
                    "error: cannot list the testbed directory `{}`: {e}",
                    ctx.dir.display()
                );
                outcome.failed = true;
                Vec::new()
            }
        };
    }
    let mut targets = Vec::new();
    for file in files {
        if file.as_os_str() == "-" {
            targets.push(Target::Stdin);
            continue;
        }
        match std::fs::metadata(file) {
            Ok(meta) if meta.is_dir() => match testbed_files(file) {
                Ok(names) => targets.extend(names.into_iter().map(|name| {
                    let path = file.join(&name);
                    Target::File {
                        name: path.display().to_string(),
                        path,
                    }
                })),
                Err(e) => {
                    eprintln!("error: cannot list the directory `{}`: {e}", file.display());
                    outcome.failed = true;
                }
            },
            Ok(_) => targets.push(Target::File {
                path: file.clone(),
                name: file.display().to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!(
                    "error: file `{}` does not exist; check the path (it is relative to the current directory)",
                    file.display()
                );
                outcome.failed = true;
            }
            Err(e) => {
                eprintln!("error: cannot read `{}`: {e}", file.display());
                outcome.failed = true;
            }
        }
    }
    targets
}

/// The names of the testbed files directly in `dir`, in name order.
fn testbed_files(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !(name.ends_with(".tg.hcl") || name.ends_with(".tgvars.hcl")) {
            continue;
        }
        // Follows symlinks: a link to a testbed file is a testbed file.
        if std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn process(
    ctx: &Ctx,
    args: &FmtArgs,
    target: &Target,
    out: &mut impl Write,
    outcome: &mut Outcome,
) {
    let (name, bytes) = match target {
        Target::Stdin => {
            let mut buf = Vec::new();
            if let Err(e) = std::io::stdin().read_to_end(&mut buf) {
                eprintln!("error: cannot read stdin: {e}");
                outcome.failed = true;
                return;
            }
            (STDIN_NAME, buf)
        }
        Target::File { path, name } => match std::fs::read(path) {
            Ok(b) => (name.as_str(), b),
            Err(e) => {
                eprintln!("error: cannot read `{name}`: {e}");
                outcome.failed = true;
                return;
            }
        },
    };
    let Ok(src) = String::from_utf8(bytes) else {
        eprintln!("error: `{name}` is not valid UTF-8; save it as UTF-8 and try again");
        outcome.failed = true;
        return;
    };
    let formatted = match format_source(&src) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{name}:{}:{}: error: {}", e.line, e.column, e.message);
            outcome.failed = true;
            return;
        }
    };
    let stdin = matches!(target, Target::Stdin);
    if stdin && !args.check && !args.diff {
        // Plain `tg fmt -`: a filter, the result always goes to stdout.
        let _ = out.write_all(formatted.as_bytes());
        if formatted != src {
            outcome.unformatted = true;
        }
        return;
    }
    if formatted == src {
        return;
    }
    outcome.unformatted = true;
    if !stdin {
        let _ = writeln!(out, "{name}");
    }
    if args.diff {
        let _ = out.write_all(unified_diff(name, &src, &formatted, ctx.color).as_bytes());
    }
    if let (false, Target::File { path, .. }) = (args.check, target) {
        if let Err(e) = write_in_place(path, &formatted) {
            eprintln!("error: cannot write `{name}`: {e}");
            outcome.failed = true;
        }
    }
}

fn unified_diff(name: &str, old: &str, new: &str, color: bool) -> String {
    let diff = similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string();
    if !color {
        return diff;
    }
    let mut s = String::with_capacity(diff.len() + 64);
    for line in diff.split_inclusive('\n') {
        let (start, end) = if line.starts_with("---") || line.starts_with("+++") {
            ("\x1b[1m", "\x1b[0m")
        } else if line.starts_with("@@") {
            ("\x1b[36m", "\x1b[0m")
        } else if line.starts_with('-') {
            ("\x1b[31m", "\x1b[0m")
        } else if line.starts_with('+') {
            ("\x1b[32m", "\x1b[0m")
        } else {
            ("", "")
        };
        let body = line.trim_end_matches('\n');
        s.push_str(start);
        s.push_str(body);
        s.push_str(end);
        if line.ends_with('\n') {
            s.push('\n');
        }
    }
    s
}

/// Replace the file's contents atomically (a temporary file in the same
/// directory, renamed over the original), keeping its permissions. A
/// symlink is followed: its target is rewritten.
fn write_in_place(path: &Path, text: &str) -> std::io::Result<()> {
    let real = std::fs::canonicalize(path)?;
    let perms = std::fs::metadata(&real)?.permissions();
    let dir = real.parent().unwrap_or(Path::new("."));
    let file_name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tg-fmt-{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::set_permissions(&tmp, perms)?;
        std::fs::rename(&tmp, &real)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_has_git_style_headers() {
        let d = unified_diff("main.tg.hcl", "a=1\n", "a = 1\n", false);
        assert_eq!(
            d,
            "--- a/main.tg.hcl\n+++ b/main.tg.hcl\n@@ -1 +1 @@\n-a=1\n+a = 1\n"
        );
    }

    #[test]
    fn coloured_diff_marks_removed_and_added_lines() {
        let d = unified_diff("x", "a=1\n", "a = 1\n", true);
        assert!(d.contains("\x1b[31m-a=1\x1b[0m\n"), "{d:?}");
        assert!(d.contains("\x1b[32m+a = 1\x1b[0m\n"), "{d:?}");
        assert!(d.starts_with("\x1b[1m--- a/x\x1b[0m\n"), "{d:?}");
    }

    #[test]
    fn testbed_files_are_listed_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.tg.hcl", "a.tgvars.hcl", "c.hcl", "a.tg.hcl", "notes.txt"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        std::fs::create_dir(dir.path().join("d.tg.hcl")).unwrap();
        assert_eq!(
            testbed_files(dir.path()).unwrap(),
            ["a.tg.hcl", "a.tgvars.hcl", "b.tg.hcl"]
        );
    }
}
