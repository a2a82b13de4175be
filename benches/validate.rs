//! Benchmark: `tg validate` of a 10,000-node testbed written one block per
//! node. Target (issue #2): at most 0.3 s wall and 200 MB peak memory.
//!
//! Run: `cargo bench --bench validate` (builds tg in release mode).

#[path = "testbed_gen.rs"]
mod testbed_gen;

use std::process::Command;
use std::time::Instant;

fn main() {
    let nodes: usize = std::env::var("TG_BENCH_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let text = testbed_gen::large_testbed(nodes);
    std::fs::write(dir.path().join("main.tg.hcl"), &text).expect("write testbed");
    let tg = env!("CARGO_BIN_EXE_tg");
    let mut best = f64::MAX;
    let mut peak_kib = 0i64;
    for _ in 0..5 {
        let start = Instant::now();
        let status = Command::new(tg)
            .args(["validate"])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run tg");
        let wall = start.elapsed().as_secs_f64();
        assert!(status.success(), "tg validate failed");
        best = best.min(wall);
        // Peak RSS of the largest child waited for so far.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
        peak_kib = peak_kib.max(usage.ru_maxrss);
    }
    println!(
        "validate: {nodes} nodes, {:.2} MB of HCL: best wall {:.3} s (target 0.300 s), peak RSS {:.1} MB (target 200 MB)",
        text.len() as f64 / 1e6,
        best,
        peak_kib as f64 / 1024.0
    );
}
