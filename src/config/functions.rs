//! The function library of the testbed language. To be written.

/// Declare every function of the testbed language in `ctx`.
pub fn declare_all(_ctx: &mut hcl::eval::Context<'_>) {}
