//! `tg fmt`.

use crate::cli::args::FmtArgs;
use crate::cli::Ctx;

pub fn run(_ctx: &Ctx, _args: &FmtArgs) -> i32 {
    eprintln!("error: `tg fmt` is not implemented yet");
    1
}
