//! The data-driven harness of the evaluation stages' unit tests:
//! `check(SOURCE, EXPECT)` loads SOURCE as the one file `main.tg.hcl` and
//! compares a compact rendering of the result with EXPECT:
//!
//! - on failure, one `LINE:COL: error: SUMMARY` line per diagnostic;
//! - on success, the warnings the same way, then `NAME = JSON` per output
//!   (tests put what they look at into outputs), or `ok` when there are
//!   none.

use crate::config::{parse::parse_texts, LoadOptions, Prior};
use crate::diagnostics::{Diagnostics, SourceMap};
use crate::environment::Environment;

/// The options the tests load with: the `netns` and `ssh` kinds, an
/// environment with only `HOME` and `TG_TEST` set.
pub(crate) fn options() -> LoadOptions {
    LoadOptions {
        dir: std::env::temp_dir(),
        env: Environment::new(
            [
                ("HOME".to_string(), "/home/test".to_string()),
                ("TG_TEST".to_string(), "from-env".to_string()),
            ],
            "/",
        ),
        drivers: vec!["netns".into(), "ssh".into()],
        ..LoadOptions::default()
    }
}

/// The compact rendering of loading `src` with `opts`.
pub(crate) fn render_with(opts: &LoadOptions, src: &str) -> String {
    let parsed = parse_texts(opts, &[("main.tg.hcl", src)]);
    let result = parsed.and_then(|p| p.evaluate(&Prior::default()));
    match result {
        Err(e) => lines(&e.diagnostics, &e.sources),
        Ok((tb, warnings)) => {
            let mut out = lines(&warnings, &tb.sources);
            for (name, o) in &tb.outputs {
                out.push_str(&format!("{name} = {}\n", o.value));
            }
            if out.is_empty() {
                out.push_str("ok\n");
            }
            out
        }
    }
}

fn lines(diags: &Diagnostics, sources: &SourceMap) -> String {
    let mut out = String::new();
    for d in diags.iter() {
        let sev = if d.is_error() { "error" } else { "warning" };
        match &d.span {
            Some(s) => {
                let p = sources.get(s.file).position(s.range.start);
                out.push_str(&format!("{}:{}: {sev}: {}\n", p.line, p.column, d.summary));
            }
            None => out.push_str(&format!("{sev}: {}\n", d.summary)),
        }
    }
    out
}

/// Load `src` and compare the rendering with `expect` (both trimmed).
#[track_caller]
pub(crate) fn check(src: &str, expect: &str) {
    check_with(&options(), src, expect);
}

/// [`check`] with other options.
#[track_caller]
pub(crate) fn check_with(opts: &LoadOptions, src: &str, expect: &str) {
    let got = render_with(opts, src);
    assert_eq!(
        got.trim(),
        expect.trim(),
        "\n--- source\n{src}\n--- got\n{got}"
    );
}
