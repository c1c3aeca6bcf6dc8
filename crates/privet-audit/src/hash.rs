//! SHA-256 digests as a type, shown and read as lowercase hex.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// A SHA-256 digest: an agreement's hash, a Merkle tree node or root, a log entry's leaf hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// SHA-256 of `parts`, concatenated.
    pub fn of(parts: &[&[u8]]) -> Hash {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        Hash(h.finalize().into())
    }

    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex (64 characters).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Reads 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Hash, String> {
        let mut out = [0u8; 32];
        if s.len() != 64 {
            return Err(format!(
                "a SHA-256 hash is 64 hex characters, got {}",
                s.chars().count()
            ));
        }
        hex::decode_to_slice(s, &mut out)
            .map_err(|_| "a SHA-256 hash is 64 hex characters (0-9, a-f)".to_string())?;
        Ok(Hash(out))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl FromStr for Hash {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hash::from_hex(s)
    }
}

/// Reads `N` bytes of hex.
pub(crate) fn hex_array<const N: usize>(s: &str, what: &str) -> Result<[u8; N], String> {
    let mut out = [0u8; N];
    if s.len() != 2 * N {
        return Err(format!(
            "{what} must be {} hex characters, got {}",
            2 * N,
            s.chars().count().min(100_000)
        ));
    }
    hex::decode_to_slice(s, &mut out)
        .map_err(|_| format!("{what} must be {} hex characters (0-9, a-f)", 2 * N))?;
    Ok(out)
}
