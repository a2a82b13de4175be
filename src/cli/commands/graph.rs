//! `tg graph [-format dot|mermaid]`: the testbed's instance graph.

use crate::cli::args::{GraphArgs, GraphFormat};
use crate::cli::engine;
use crate::cli::report::{CmdResult, Failed};
use crate::cli::Ctx;
use crate::graph::InstanceGraph;

pub fn run(ctx: &Ctx, args: &GraphArgs) -> i32 {
    match run_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

fn run_inner(ctx: &Ctx, args: &GraphArgs) -> CmdResult<i32> {
    let tb = engine::load_testbed(ctx, &args.vars)?;
    let g = InstanceGraph::from_testbed(&tb);
    if let Err(e) = g.topo_order() {
        eprintln!("warning: {e}");
    }
    match args.format {
        GraphFormat::Dot => print!("{}", g.to_dot()),
        GraphFormat::Mermaid => print!("{}", g.to_mermaid()),
    }
    Ok(0)
}
