//! `tg validate [-json]`: every problem of the testbed, or "valid".

use serde::Serialize;

use crate::cli::args::ValidateArgs;
use crate::cli::Ctx;
use crate::config;
use crate::diagnostics::{self, Diagnostics, JsonDiagnostic, SourceMap};

/// The `-json` document (schemas/validate.schema.json).
#[derive(Serialize)]
struct ValidateJson {
    format_version: &'static str,
    valid: bool,
    error_count: usize,
    warning_count: usize,
    diagnostics: Vec<JsonDiagnostic>,
}

pub fn run(ctx: &Ctx, args: &ValidateArgs) -> i32 {
    let mut opts =
        crate::cli::engine::workspace(ctx, &args.vars, std::sync::Arc::new(crate::apply::NoHook))
            .load_options(Default::default());
    opts.dir = ctx.dir.clone();
    let (diags, sources, instances) = match config::load(&opts) {
        Ok((tb, warnings)) => (warnings, tb.sources.clone(), tb.instances.len()),
        Err(e) => (e.diagnostics, e.sources, 0),
    };
    if args.json {
        print_json(&diags, &sources);
    } else {
        eprint!("{}", diagnostics::render_all(&diags, &sources));
        if diags.has_errors() {
            eprintln!(
                "{} error{}, {} warning{}",
                diags.error_count(),
                plural(diags.error_count()),
                diags.warning_count(),
                plural(diags.warning_count())
            );
        } else {
            println!(
                "The testbed is valid: {instances} instance{}.",
                plural(instances)
            );
        }
    }
    i32::from(diags.has_errors())
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Print the `-json` document of these diagnostics on stdout.
pub(crate) fn print_json(diags: &Diagnostics, sources: &SourceMap) {
    let doc = ValidateJson {
        format_version: "1.0",
        valid: !diags.has_errors(),
        error_count: diags.error_count(),
        warning_count: diags.warning_count(),
        diagnostics: diags
            .iter()
            .map(|d| diagnostics::to_json(d, sources))
            .collect(),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into())
    );
}
