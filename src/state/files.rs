//! Files kept with a session in the store: an API session's model and the
//! files uploaded to it (`tg serve`), so every server on one store can
//! serve the session, not only the one that opened it.
//!
//! A file is keyed by session and name and holds bytes, their size and
//! SHA-256, and a revision: 1 when written first, one more at every write.
//! A writer says what it expects to find ([`Expect`]): nothing (a new
//! session), the revision it read (an edit: two servers editing one
//! session at once never lose one's change, the second is refused), or
//! anything (an upload replacing a file). This module owns the row type
//! and that rule; the SQL is in the backends. Not here: what the files
//! mean (`serve::model`, `serve::files`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One file kept with a session, without its content.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredFile {
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// 1 when written first, one more at every write.
    pub revision: i64,
    /// RFC 3339 UTC: when it was last written.
    pub updated: String,
}

impl StoredFile {
    /// The row of `content` written as `name` at `revision` now.
    pub fn describe(name: &str, content: &[u8], revision: i64) -> StoredFile {
        StoredFile {
            name: name.to_string(),
            size: content.len() as u64,
            sha256: sha256_hex(content),
            revision,
            updated: super::now_rfc3339(),
        }
    }
}

/// What a write of a session file expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Anything: the write replaces what is there.
    Any,
    /// No such file yet.
    Absent,
    /// The file at this revision (as read before the edit).
    Revision(i64),
}

impl Expect {
    /// Whether a write may go on over `found` (the revision there, if any).
    pub fn allows(self, found: Option<i64>) -> bool {
        match (self, found) {
            (Expect::Any, _) | (Expect::Absent, None) => true,
            (Expect::Revision(want), Some(there)) => want == there,
            _ => false,
        }
    }

    /// The revision the write gives the file, over `found`.
    pub fn next(found: Option<i64>) -> i64 {
        found.unwrap_or(0) + 1
    }
}

/// SHA-256 of `content`, hex.
pub fn sha256_hex(content: &[u8]) -> String {
    format!("{:x}", Sha256::digest(content))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expect_allows_only_what_it_names() {
        assert!(Expect::Any.allows(None) && Expect::Any.allows(Some(4)));
        assert!(Expect::Absent.allows(None) && !Expect::Absent.allows(Some(1)));
        assert!(Expect::Revision(2).allows(Some(2)));
        assert!(!Expect::Revision(2).allows(Some(3)) && !Expect::Revision(2).allows(None));
        assert_eq!((Expect::next(None), Expect::next(Some(7))), (1, 8));
    }

    #[test]
    fn sha256_of_nothing_is_the_known_digest() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
