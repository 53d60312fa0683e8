//! The RSA key pair for caching_sha2_password full authentication without
//! TLS: the client fetches the public key and sends its password encrypted.

use std::path::Path;
use std::sync::Arc;

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use rsa::RsaPrivateKey;

pub struct KeyPair {
    pub private: RsaPrivateKey,
    pub public_pem: String,
}

/// Loaded from a file at start, or generated on first use (key generation
/// takes a noticeable fraction of a second, and most setups never need it).
pub struct RsaKeys {
    // tokio OnceCell: the first session that needs the key generates it off
    // the runtime threads; concurrent ones await the same result.
    cell: tokio::sync::OnceCell<Arc<KeyPair>>,
}

// === impl RsaKeys ===

impl RsaKeys {
    pub fn new(file: Option<&Path>) -> Result<RsaKeys, String> {
        let cell = tokio::sync::OnceCell::new();
        if let Some(path) = file {
            let pem =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let private = RsaPrivateKey::from_pkcs8_pem(&pem)
                .or_else(|_| RsaPrivateKey::from_pkcs1_pem(&pem))
                .map_err(|e| format!("{}: not an RSA private key: {e}", path.display()))?;
            let pair = pair(private).map_err(|e| format!("{}: {e}", path.display()))?;
            let _ = cell.set(Arc::new(pair));
        }
        Ok(RsaKeys { cell })
    }

    pub async fn get(&self) -> Result<Arc<KeyPair>, String> {
        self.cell
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(|| {
                    let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
                        .map_err(|e| e.to_string())?;
                    pair(private).map(Arc::new)
                })
                .await
                .map_err(|e| e.to_string())?
            })
            .await
            .cloned()
    }
}

fn pair(private: RsaPrivateKey) -> Result<KeyPair, String> {
    let public_pem = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| e.to_string())?;
    Ok(KeyPair {
        private,
        public_pem,
    })
}
