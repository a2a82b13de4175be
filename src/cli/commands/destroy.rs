//! `tg destroy`.

use crate::cli::args::DestroyArgs;
use crate::cli::Ctx;

pub fn run(_ctx: &Ctx, _args: &DestroyArgs) -> i32 {
    eprintln!("error: `tg destroy` is not implemented yet");
    1
}
