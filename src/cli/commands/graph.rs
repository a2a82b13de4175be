//! `tg graph`.

use crate::cli::args::GraphArgs;
use crate::cli::Ctx;

pub fn run(_ctx: &Ctx, _args: &GraphArgs) -> i32 {
    eprintln!("error: `tg graph` is not implemented yet");
    1
}
