//! `tg state`.

use crate::cli::args::StateCommand;
use crate::cli::Ctx;

pub fn run(_ctx: &Ctx, _args: &StateCommand) -> i32 {
    eprintln!("error: `tg state` is not implemented yet");
    1
}
