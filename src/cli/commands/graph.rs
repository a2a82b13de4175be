//! `tg graph [PLANFILE] [-format dot|mermaid|svg]`: the testbed's instance
//! graph, or a saved plan's, coloured by planned action.

use crate::cli::args::{GraphArgs, GraphFormat};
use crate::cli::engine;
use std::collections::BTreeMap;

use crate::addrs::InstanceAddr;
use crate::cli::report::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::graph::InstanceGraph;
use crate::plan::planfile::PlanFile;
use crate::plan::Action;

pub fn run(ctx: &Ctx, args: &GraphArgs) -> i32 {
    match run_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

fn run_inner(ctx: &Ctx, args: &GraphArgs) -> CmdResult<i32> {
    let (g, actions) = match &args.plan_file {
        Some(path) => {
            let pf = PlanFile::load(path).map_err(report::fail)?;
            let actions: BTreeMap<InstanceAddr, Action> = pf
                .plan
                .changes
                .iter()
                .map(|c| (c.address.clone(), c.action))
                .collect();
            let g = InstanceGraph::from_edges(
                pf.plan
                    .changes
                    .iter()
                    .map(|c| (c.address.clone(), c.depends_on.clone())),
            );
            (g, actions)
        }
        None => {
            let tb = engine::load_testbed(ctx, &args.vars)?;
            (InstanceGraph::from_testbed(&tb), BTreeMap::new())
        }
    };
    if let Err(e) = g.topo_order() {
        eprintln!("warning: {e}");
    }
    let style = |a: &InstanceAddr| {
        actions.get(a).map(|act| {
            let (fill, label) = match act {
                Action::Create => ("#c8f0c8", "+"),
                Action::Update => ("#f8e8a8", "~"),
                Action::Replace => ("#f8c8a0", "-/+"),
                Action::Delete => ("#f4b4b4", "-"),
                Action::NoOp => ("#ffffff", " "),
            };
            format!(
                "style=filled, fillcolor=\"{fill}\", tooltip=\"{} {a}\"",
                label.trim()
            )
        })
    };
    match args.format {
        GraphFormat::Dot => print!("{}", g.to_dot_styled(&style)),
        GraphFormat::Mermaid => print!("{}", g.to_mermaid()),
        GraphFormat::Svg => {
            let svg = render_svg(&g.to_dot_styled(&style))?;
            use std::io::Write;
            let _ = std::io::stdout().write_all(&svg);
        }
    }
    Ok(0)
}

/// Draw DOT as SVG with Graphviz `dot`.
fn render_svg(dot: &str) -> CmdResult<Vec<u8>> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                report::fail("`-format svg` needs Graphviz's `dot`, which is not installed: install the `graphviz` package, or use `-format dot` and draw it elsewhere")
            } else {
                report::fail(format!("cannot run Graphviz `dot`: {e}"))
            }
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(dot.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| report::fail(format!("`dot` (Graphviz) failed: {e}")))?;
    if !out.status.success() {
        return Err(report::fail(format!(
            "`dot` (Graphviz) failed: {}: use `-format dot` and draw it elsewhere",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}
