//! `tg inventory`.

use crate::cli::args::InventoryArgs;
use crate::cli::Ctx;

pub fn run(_ctx: &Ctx, _args: &InventoryArgs) -> i32 {
    eprintln!("error: `tg inventory` is not implemented yet");
    1
}
