//! `tg validate`.

use crate::cli::args::ValidateArgs;
use crate::cli::Ctx;

pub fn run(_ctx: &Ctx, _args: &ValidateArgs) -> i32 {
    eprintln!("error: `tg validate` is not implemented yet");
    1
}
