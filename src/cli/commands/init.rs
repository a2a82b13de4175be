//! `tg init`.

use crate::cli::args::InitArgs;
use crate::cli::Ctx;

pub fn run(_ctx: &Ctx, _args: &InitArgs) -> i32 {
    eprintln!("error: `tg init` is not implemented yet");
    1
}
