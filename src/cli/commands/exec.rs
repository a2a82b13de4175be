//! `tg exec`.

use crate::cli::args::ExecArgs;
use crate::cli::Ctx;

pub fn run(_ctx: &Ctx, _args: &ExecArgs) -> i32 {
    eprintln!("error: `tg exec` is not implemented yet");
    1
}
