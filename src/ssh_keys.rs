//! SSH key pairs tg makes: a client key per session and a host key per
//! node, so tg knows every node's host key before anyone connects.
//!
//! Ed25519 only (every OpenSSH since 6.5 takes it, and making one costs
//! microseconds), seeded from the OS's random source, rendered in
//! OpenSSH's own formats with the `ssh-key` crate.
//! Not here: where the keys are written (`ops::ssh_files` for a session's,
//! the netns platform's `sshd` module for a node's).

use ssh_key::private::{Ed25519Keypair, KeypairData};
use ssh_key::{LineEnding, PrivateKey};
use zeroize::Zeroizing;

/// An Ed25519 key pair in OpenSSH formats.
pub struct KeyPair {
    /// The private key file (`-----BEGIN OPENSSH PRIVATE KEY-----`).
    pub private_openssh: Zeroizing<String>,
    /// The public key line (`ssh-ed25519 AAAA… COMMENT`).
    pub public_openssh: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public_openssh", &self.public_openssh)
            .finish_non_exhaustive()
    }
}

/// Why a key could not be made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the system's random source: {0}")]
    Random(getrandom::Error),
    #[error("cannot encode the SSH key: {0}")]
    Encode(#[from] ssh_key::Error),
}

/// A new Ed25519 key pair whose public line ends with `comment`.
pub fn ed25519(comment: &str) -> Result<KeyPair, KeyError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(KeyError::Random)?;
    let pair = Ed25519Keypair::from_seed(&seed);
    let key = PrivateKey::new(KeypairData::from(pair), comment)?;
    Ok(KeyPair {
        private_openssh: key.to_openssh(LineEnding::LF)?,
        public_openssh: key.public_key().to_openssh()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_and_differ() {
        let a = ed25519("tg@s").unwrap();
        let b = ed25519("tg@s").unwrap();
        assert!(a.public_openssh.starts_with("ssh-ed25519 "));
        assert!(a.public_openssh.ends_with(" tg@s"));
        assert_ne!(a.public_openssh, b.public_openssh);
        let back = PrivateKey::from_openssh(a.private_openssh.as_bytes()).unwrap();
        assert_eq!(back.public_key().to_openssh().unwrap(), a.public_openssh);
        assert!(!format!("{a:?}").contains("PRIVATE"));
    }
}
