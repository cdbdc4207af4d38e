//! TLS to the database, chosen by the URL's `sslmode` as libpq spells it.
//!
//! | `sslmode` | what this store does |
//! |---|---|
//! | `disable`, `allow`, `prefer`, none | a plain connection (libpq's `prefer` would encrypt without checking who answers; this store does not pretend to that) |
//! | `require`, `verify-ca`, `verify-full` | TLS, and the server's certificate must chain to `sslrootcert` (a PEM file) or, without it, to the web PKI roots, and name the host connected to |
//!
//! So `require` is stricter here than in libpq (which encrypts without verifying unless a
//! root certificate is given): a database reached over a network is authenticated, or the
//! connection is refused with a message saying to give its CA with `sslrootcert`.
//! `sslmode` and `sslrootcert` are read here and removed from what the driver parses.

use std::sync::Arc;

use tokio_postgres::config::SslMode;
use url::Url;

/// How connections are made.
#[derive(Clone)]
pub(crate) enum Tls {
    /// Plain TCP (or a Unix socket).
    Plain,
    /// TLS, verifying the server.
    Verified(tokio_postgres_rustls::MakeRustlsConnect),
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tls::Plain => "Plain",
            Tls::Verified(_) => "Verified",
        })
    }
}

/// The URL without the TLS parameters, the TLS to use, and the driver's `SslMode`.
///
/// # Errors
/// An unknown `sslmode`, or a `sslrootcert` that cannot be read or holds no certificate; the
/// message says which (never the URL's password).
pub(crate) fn from_url(url: &str) -> Result<(String, Tls, SslMode), String> {
    // A key=value connection string is handed on as it is, without TLS: one that asks for
    // TLS is refused rather than connected in plain text.
    let Ok(mut parsed) = Url::parse(url) else {
        if url.split_whitespace().any(|kv| {
            kv.strip_prefix("sslmode=")
                .is_some_and(|m| !matches!(m, "disable" | "allow" | "prefer"))
        }) {
            return Err(
                "TLS is set up from a postgres:// URL only: give the database as \
                        postgres://user@host/db?sslmode=verify-full&sslrootcert=/path/ca.pem"
                    .to_string(),
            );
        }
        return Ok((url.to_string(), Tls::Plain, SslMode::Disable));
    };
    let mut mode = None;
    let mut root_cert = None;
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter_map(|(k, v)| match k.as_ref() {
            "sslmode" => {
                mode = Some(v.into_owned());
                None
            }
            "sslrootcert" => {
                root_cert = Some(v.into_owned());
                None
            }
            _ => Some((k.into_owned(), v.into_owned())),
        })
        .collect();
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    let verify = match mode.as_deref() {
        None | Some("disable" | "allow" | "prefer") => false,
        Some("require" | "verify-ca" | "verify-full") => true,
        Some(other) => {
            return Err(format!(
                "sslmode={other:?} is not one of disable, allow, prefer, require, verify-ca, \
                 verify-full"
            ));
        }
    };
    if !verify {
        return Ok((parsed.to_string(), Tls::Plain, SslMode::Disable));
    }
    let mut roots = rustls::RootCertStore::empty();
    match &root_cert {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("sslrootcert {path:?} cannot be read: {e}"))?;
            let mut added = 0;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| format!("sslrootcert {path:?} is not PEM: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("sslrootcert {path:?} holds a bad certificate: {e}"))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!(
                    "sslrootcert {path:?} holds no PEM certificate (BEGIN CERTIFICATE)"
                ));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS cannot be set up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok((
        parsed.to_string(),
        Tls::Verified(tokio_postgres_rustls::MakeRustlsConnect::new(config)),
        SslMode::Require,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_parameters_are_read_and_removed() {
        let (url, tls, mode) =
            from_url("postgres://u:secret@db:5432/p?sslmode=disable&application_name=x").unwrap();
        assert_eq!(url, "postgres://u:secret@db:5432/p?application_name=x");
        assert!(matches!(tls, Tls::Plain));
        assert_eq!(mode, SslMode::Disable);
        let (url, tls, mode) = from_url("postgres://db/p?sslmode=require").unwrap();
        assert_eq!(url, "postgres://db/p");
        assert!(matches!(tls, Tls::Verified(_)));
        assert_eq!(mode, SslMode::Require);
        assert!(matches!(from_url("postgres://db/p").unwrap().1, Tls::Plain));
        assert!(matches!(from_url("host=db user=u").unwrap().1, Tls::Plain));
        let e = from_url("host=db sslmode=require").unwrap_err();
        assert!(e.contains("postgres:// URL"), "{e}");
    }

    #[test]
    fn a_bad_mode_or_root_file_is_refused_with_what_to_fix() {
        let e = from_url("postgres://u:secret@db/p?sslmode=always").unwrap_err();
        assert!(
            e.contains("sslmode=\"always\"") && !e.contains("secret"),
            "{e}"
        );
        let e =
            from_url("postgres://db/p?sslmode=verify-full&sslrootcert=/no/such.pem").unwrap_err();
        assert!(
            e.contains("/no/such.pem") && e.contains("cannot be read"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").unwrap();
        let e = from_url(&format!(
            "postgres://db/p?sslmode=require&sslrootcert={}",
            empty.display()
        ))
        .unwrap_err();
        assert!(e.contains("no PEM certificate"), "{e}");
    }
}
