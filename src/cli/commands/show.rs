//! `tg show`.

use crate::cli::args::ShowArgs;
use crate::cli::Ctx;

pub fn run(_ctx: &Ctx, _args: &ShowArgs) -> i32 {
    eprintln!("error: `tg show` is not implemented yet");
    1
}
