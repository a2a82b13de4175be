//! `tg session`.

use crate::cli::args::SessionCommand;
use crate::cli::Ctx;

pub fn run(_ctx: &Ctx, _args: &SessionCommand) -> i32 {
    eprintln!("error: `tg session` is not implemented yet");
    1
}
