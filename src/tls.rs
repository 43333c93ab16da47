//! TLS: rustls with the ring provider. Either the configured PEM files, or a self-signed
//! certificate made at first start and kept in `<data_dir>/tls/` (made again when its names
//! or addresses change or it nears its end).
//!
//! - `self_signed`: that certificate's names, validity and renewal.
//! - `upload`: a certificate and key from the setup page, checked and installed.
//! - `validity`: a certificate's notBefore and notAfter, read from its DER.

mod self_signed;
mod upload;
mod validity;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
pub use self_signed::Names;
pub use upload::{CertificateProblem, CertificateSummary, check_upload, date, install_upload};
pub use validity::{Validity, validity};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(String),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn file_error(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Where the certificate in use lives.
pub fn cert_paths(config: &Config) -> (PathBuf, PathBuf) {
    match &config.tls {
        Some(files) => (files.cert.clone(), files.key.clone()),
        None => {
            let dir = config.data_dir.join("tls");
            (dir.join("cert.pem"), dir.join("key.pem"))
        }
    }
}

/// Loads the configured certificate, or the self-signed one, made at first start and again
/// whenever it does not name the box as it is now or nears its end (the setup page changes
/// the name, and the daemon reloads through here). A configured or uploaded certificate is
/// never replaced.
pub fn acceptor(config: &Config) -> Result<TlsAcceptor, TlsError> {
    let (cert, key) = cert_paths(config);
    if !self_signed_is_current(config) {
        let names = Names::of_this_box(&config.hostname);
        self_signed::generate(&names, crate::store::now_unix(), &cert, &key)?;
    }
    let chain = CertificateDer::pem_file_iter(&cert)
        .map_err(|e| file_error(&cert, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(&cert, e))?;
    if chain.is_empty() {
        return Err(file_error(&cert, "no certificate in the file"));
    }
    let key_der = PrivateKeyDer::from_pem_file(&key).map_err(|e| file_error(&key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// False when the self-signed certificate must be made (again): missing, not naming the host
/// or one of the box's addresses, or within a month of its end. True for configured files.
/// The daemon's periodic work asks this and reloads when it turns false.
pub fn self_signed_is_current(config: &Config) -> bool {
    if config.tls.is_some() {
        return true;
    }
    let (cert, key) = cert_paths(config);
    let names = Names::of_this_box(&config.hostname);
    key.exists() && self_signed::fits(&cert, &names, crate::store::now_unix())
}

/// Writes via a temporary file, fsync and rename, so a crash never leaves half a key; the
/// file gets `mode` from its creation on. DKIM keys are written the same way.
pub(crate) fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temporary)
        .map_err(|e| file_error(&temporary, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| file_error(&temporary, e))?;
    std::fs::rename(&temporary, path).map_err(|e| file_error(path, e))?;
    // The rename itself is durable only once the directory is.
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| file_error(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn self_signed_is_made_once_with_a_private_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::development();
        config.data_dir = dir.path().to_path_buf();
        acceptor(&config).expect("first start");
        let (cert, key) = cert_paths(&config);
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let first = std::fs::read(&cert).expect("cert");
        acceptor(&config).expect("second start");
        assert_eq!(
            std::fs::read(&cert).expect("cert"),
            first,
            "kept, not remade"
        );
    }

    #[test]
    fn self_signed_is_made_again_for_a_new_hostname_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::development();
        config.data_dir = dir.path().to_path_buf();
        config.hostname = "mail.smith.example".into();
        acceptor(&config).expect("first start");
        let (cert, key) = cert_paths(&config);
        let first = std::fs::read(&cert).expect("cert");
        assert!(self_signed_is_current(&config));

        config.hostname = "box.jones.example".into();
        acceptor(&config).expect("reload with the new name");
        let second = std::fs::read(&cert).expect("cert");
        assert_ne!(second, first, "remade for the new name");
        assert!(self_signed_is_current(&config));
        config.hostname = "mail.smith.example".into();
        assert!(!self_signed_is_current(&config));
        config.hostname = "box.jones.example".into();
        acceptor(&config).expect("again");
        assert_eq!(
            std::fs::read(&cert).expect("cert"),
            second,
            "kept while it fits"
        );

        // An uploaded certificate for another name is left alone (and still loads).
        let files = crate::config::TlsFiles {
            cert: dir.path().join("other-cert.pem"),
            key: dir.path().join("other-key.pem"),
        };
        std::fs::copy(&cert, &files.cert).expect("copy cert");
        std::fs::copy(&key, &files.key).expect("copy key");
        let uploaded = std::fs::read(&files.cert).expect("cert");
        config.hostname = "third.example".into();
        config.tls = Some(files.clone());
        acceptor(&config).expect("configured files load whatever the name");
        assert_eq!(std::fs::read(&files.cert).expect("cert"), uploaded);
        assert_eq!(
            std::fs::read(&cert).expect("cert"),
            second,
            "self-signed untouched"
        );
    }

    #[test]
    fn configured_files_that_are_missing_are_an_error() {
        let mut config = Config::development();
        config.tls = Some(crate::config::TlsFiles {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
        });
        let error = acceptor(&config).err().expect("error").to_string();
        assert!(error.starts_with("/nonexistent/cert.pem"), "{error}");
    }
}
