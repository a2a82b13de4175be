//! `tg force-unlock`.

use crate::cli::args::ForceUnlockArgs;
use crate::cli::Ctx;

pub fn run(_ctx: &Ctx, _args: &ForceUnlockArgs) -> i32 {
    eprintln!("error: `tg force-unlock` is not implemented yet");
    1
}
