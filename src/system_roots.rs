//! The system's CA certificates (rustls-native-certs), read once per process: deskmail's own
//! TLS clients (IMAP, the OAuth2 token endpoint) trust them, besides a configured `ca_file`. A
//! change to the system's CAs is seen at the next start.

use std::sync::OnceLock;

use tokio_rustls::rustls::pki_types::CertificateDer;

pub fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}
