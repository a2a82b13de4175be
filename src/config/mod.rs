//! Config: testbed files (`*.tg.hcl`) in, an evaluated [`model::Testbed`] out.
//!
//! Owns reading and parsing the files (hcl-edit, keeping spans), the
//! language's static checks, evaluation of expressions (hcl-rs with tg's own
//! function library), expansion of `count`/`for_each`, and address
//! assignment (IPAM). Does no I/O but reading files and environment
//! variables; never talks to state or platforms.

pub mod functions;
pub mod model;
