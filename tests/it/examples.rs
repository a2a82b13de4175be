//! The testbeds in `examples/` stay valid and formatted: they are what a
//! newcomer runs first (README) and what the Jenkinsfile applies.

use std::path::PathBuf;
use std::process::Command;

use crate::support::tg_bin;

fn example_dirs() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("examples/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            std::fs::read_dir(p).is_ok_and(|mut rd| {
                rd.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".tg.hcl")))
            })
        })
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_example_validates_and_is_formatted() {
    let dirs = example_dirs();
    assert!(
        dirs.len() >= 2,
        "expected the quick start and more: {dirs:?}"
    );
    for dir in dirs {
        for args in [&["validate"][..], &["fmt", "-check"][..]] {
            let out = Command::new(tg_bin())
                .arg("-chdir")
                .arg(&dir)
                .args(args)
                .env("NO_COLOR", "1")
                .output()
                .expect("run tg");
            assert!(
                out.status.success(),
                "`tg {}` failed in {}:\n{}{}",
                args.join(" "),
                dir.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
