//! The Ed25519 key that signs the audit chain's anchors (kept outside the
//! database: a key file or an environment variable), and its public half
//! that checks them. See [`super::anchor`].

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use std::path::Path;

/// The key that signs anchors. Its `Debug` never shows the secret.
pub struct AnchorKey {
    key: SigningKey,
}

impl std::fmt::Debug for AnchorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AnchorKey(public {})", self.public_hex())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnchorKeyError {
    #[error("an audit signing key is 64 hexadecimal digits (a 32-byte Ed25519 seed)")]
    Format,
    #[error("a public key is 64 hexadecimal digits")]
    PublicKey,
    #[error("reading or writing the audit signing key {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl AnchorKey {
    /// A new random key.
    pub fn generate() -> AnchorKey {
        AnchorKey {
            key: SigningKey::from_bytes(&rand::random::<[u8; 32]>()),
        }
    }

    /// The key from its seed, 64 hex digits.
    pub fn from_seed_hex(seed: &str) -> Result<AnchorKey, AnchorKeyError> {
        let bytes: [u8; 32] = hex::decode(seed.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(AnchorKeyError::Format)?;
        Ok(AnchorKey {
            key: SigningKey::from_bytes(&bytes),
        })
    }

    /// Reads the key file, or creates it (readable by its owner only) with a
    /// new key when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<AnchorKey, AnchorKeyError> {
        let io = |source| AnchorKeyError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => AnchorKey::from_seed_hex(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = AnchorKey::generate();
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(io)?;
                std::io::Write::write_all(
                    &mut file,
                    format!("{}\n", hex::encode(key.key.to_bytes())).as_bytes(),
                )
                .map_err(io)?;
                Ok(key)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The public key, 64 hex digits: what `audit verify` checks against.
    pub fn public_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.key.verifying_key())
    }

    /// HMAC-SHA256 of `message` under a key for `purpose` derived from this
    /// one (itself HMAC-SHA256 of the purpose under the seed): one secret
    /// kept outside the database serves several ends, and no derived value
    /// tells anything of the seed or of another purpose's key. The PACS
    /// link keys its routes with it (`crate::pacs`).
    pub fn keyed_hash(&self, purpose: &str, message: &str) -> String {
        use hmac::{Hmac, Mac};
        type HmacSha256 = Hmac<sha2::Sha256>;
        let mut derive = HmacSha256::new_from_slice(&self.key.to_bytes())
            .expect("HMAC takes a key of any length");
        derive.update(purpose.as_bytes());
        let derived = derive.finalize().into_bytes();
        let mut mac = HmacSha256::new_from_slice(&derived).expect("HMAC takes a key of any length");
        mac.update(message.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// The public half of an anchor key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn from_hex(text: &str) -> Result<PublicKey, AnchorKeyError> {
        let bytes: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(AnchorKeyError::PublicKey)?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| AnchorKeyError::PublicKey)
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0.to_bytes())
    }
}

impl AnchorKey {
    /// The seed, as the key file holds it (for tests).
    #[cfg(test)]
    pub(crate) fn seed_hex(&self) -> String {
        hex::encode(self.key.to_bytes())
    }

    /// The signature of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        self.key.sign(message)
    }
}

impl PublicKey {
    /// Whether `signature` over `message` was made with this key's secret half.
    pub(crate) fn verifies(&self, message: &[u8], signature: &Signature) -> bool {
        self.0.verify(message, signature).is_ok()
    }
}
