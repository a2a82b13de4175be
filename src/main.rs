//! The `tg` binary: everything is in the library; see `tg::cli`.

/// mimalloc: tg builds and drops many small objects (one per attribute of
/// every instance); glibc's allocator spends a third of `tg validate` on a
/// 10,000-node testbed in malloc/free, mimalloc a fraction of it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tg::cli::main()
}
