//! The certificate authorities a fetch trusts: the system's, or configured ones.

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::RootCertStore;

use super::FetchConfigError;

/// The operating system's trusted roots (as `rustls-native-certs` finds them, honouring
/// `SSL_CERT_FILE` and `SSL_CERT_DIR`). Refused when none can be loaded.
pub(crate) fn system() -> Result<RootCertStore, FetchConfigError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found
            .errors
            .first()
            .map_or_else(|| "none found".to_owned(), ToString::to_string);
        return Err(FetchConfigError::NoSystemRoots(why));
    }
    Ok(roots)
}

/// Every `CERTIFICATE` in the PEM documents. Each document must hold at least one,
/// and each must be a usable trust anchor.
pub(crate) fn from_pem(documents: &[Vec<u8>]) -> Result<RootCertStore, FetchConfigError> {
    let invalid = |why: String| FetchConfigError::InvalidRootCertificates(why);
    let mut roots = RootCertStore::empty();
    for pem in documents {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(e.to_string()))?;
        if certs.is_empty() {
            return Err(invalid("no CERTIFICATE in the PEM document".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| invalid(e.to_string()))?;
        }
    }
    Ok(roots)
}
