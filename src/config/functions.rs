//! The function library of the testbed language. (Stub: being written.)

/// Every function name, sorted.
pub const NAMES: &[&str] = &[];

/// Declare every function of the testbed language in `ctx`.
pub fn declare_all(_ctx: &mut hcl::eval::Context<'_>) {}

/// Run `f` with `file()` resolving relative paths against `dir`.
pub fn with_base_dir<T>(_dir: &std::path::Path, f: impl FnOnce() -> T) -> T {
    f()
}

/// A one-line usage string.
pub fn signature(_name: &str) -> Option<&'static str> {
    None
}
