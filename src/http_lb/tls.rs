//! TLS termination for a frontend: several certificates chosen by SNI,
//! ALPN `h2` and `http/1.1`.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::config::FrontendTls;
use crate::tls::{load_certs, load_key, TlsError};

/// Picks the first certificate valid for the SNI name, else the first one
/// (clients without SNI, or asking for a name no certificate has).
#[derive(Debug)]
struct BySni {
    keys: Vec<Arc<CertifiedKey>>,
}

// === impl BySni ===

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let fallback = self.keys.first().cloned();
        let Some(name) = hello.server_name() else {
            return fallback;
        };
        let Ok(name) = ServerName::try_from(name.to_owned()) else {
            return fallback;
        };
        self.keys
            .iter()
            .find(|k| valid_for(&k.cert[0], &name))
            .cloned()
            .or(fallback)
    }
}

fn valid_for(cert: &CertificateDer<'_>, name: &ServerName<'_>) -> bool {
    webpki::EndEntityCert::try_from(cert)
        .map(|c| c.verify_is_valid_for_subject_name(name).is_ok())
        .unwrap_or(false)
}

/// The rustls server configuration of a frontend; `h2` offered in ALPN
/// only when the frontend serves HTTP/2.
pub fn server_config(cfg: &FrontendTls, http2: bool) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut keys = Vec::with_capacity(cfg.certificates.len());
    for c in &cfg.certificates {
        let certs = load_certs(&c.cert_file)?;
        let key = load_key(&c.key_file)?;
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| TlsError::File {
                path: c.key_file.display().to_string(),
                reason: e.to_string(),
            })?;
        keys.push(Arc::new(CertifiedKey::new(certs, signing)));
    }
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(BySni { keys }));
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}
