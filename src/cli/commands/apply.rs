//! `tg apply`.

use crate::cli::args::ApplyArgs;
use crate::cli::Ctx;

pub fn run(_ctx: &Ctx, _args: &ApplyArgs) -> i32 {
    eprintln!("error: `tg apply` is not implemented yet");
    1
}
