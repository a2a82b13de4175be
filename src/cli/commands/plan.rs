//! `tg plan`.

use crate::cli::args::PlanArgs;
use crate::cli::Ctx;

pub fn run(_ctx: &Ctx, _args: &PlanArgs) -> i32 {
    eprintln!("error: `tg plan` is not implemented yet");
    1
}
