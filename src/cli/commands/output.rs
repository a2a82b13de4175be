//! `tg output`.

use crate::cli::args::OutputArgs;
use crate::cli::Ctx;

pub fn run(_ctx: &Ctx, _args: &OutputArgs) -> i32 {
    eprintln!("error: `tg output` is not implemented yet");
    1
}
