//! `tg proxy`.

use crate::cli::args::ProxyArgs;
use crate::cli::Ctx;

pub fn run(_ctx: &Ctx, _args: &ProxyArgs) -> i32 {
    eprintln!("error: `tg proxy` is not implemented yet");
    1
}
