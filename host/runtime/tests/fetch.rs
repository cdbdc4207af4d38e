//! Remote content as the host fetches it: only 200 and 206 carry bytes (a `202 Accepted` while
//! the platform prepares a file, or a `204`, is "not ready, retry after"), a body cut off before
//! its `Content-Length` is an error and never a shorter file, a large whole-file download is
//! spooled to disk past the memory limit, and a server that ignores ranges is read as a stream
//! of which only the window is kept.
//!
//! Drives the well-behaved test plugin, whose `download` points the host at
//! `{base_url}/files/{id}/content`, against a small server on loopback.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use proofpix_model::RemoteFile;
use proofpix_policy::{Limits, OperatorGrant};
use proofpix_runtime::{
    Body, Content, FetchError, IntegrationContext, RemoteContent, Runtime, RuntimeConfig,
    StaticCredentials,
};
use proofpix_vault::Secret;

/// A deterministic body of `len` bytes.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

const BIG: usize = 300 * 1024;

async fn content(Path(id): Path<String>, headers: HeaderMap) -> Response {
    match id.as_str() {
        // Box while a fresh upload is processed.
        "pending" => (StatusCode::ACCEPTED, [(header::RETRY_AFTER, "7")]).into_response(),
        "empty" => StatusCode::NO_CONTENT.into_response(),
        "created" => (StatusCode::CREATED, pattern(10)).into_response(),
        // Slack's file host to a token without `files:read`: a sign-in page, status 200.
        "signin" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!DOCTYPE html><html><title>Sign in | Slack</title></html>",
        )
            .into_response(),
        "xhtml" => (
            StatusCode::PARTIAL_CONTENT,
            [
                (header::CONTENT_TYPE, "Application/XHTML+XML"),
                (header::CONTENT_RANGE, "bytes 0-9/10"),
            ],
            "<html/>...",
        )
            .into_response(),
        // Ignores Range: always the whole file.
        "big" => {
            let _ = headers.get(header::RANGE);
            pattern(BIG).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A server on loopback: axum for the well-formed answers, and a raw socket on `/cut` that
/// announces 5000 bytes, sends 1000 and closes.
async fn serve() -> String {
    let app = Router::new().route("/files/{id}/content", get(content));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

async fn serve_cut() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(buf.get(..n).unwrap_or_default()),
                    }
                }
                let mut reply =
                    b"HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ncontent-length: 5000\r\n\r\n"
                        .to_vec();
                reply.extend(pattern(1000));
                let _ = sock.write_all(&reply).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    base
}

async fn remote(base: &str, id: &str) -> RemoteContent {
    let runtime = Runtime::new(RuntimeConfig {
        limits: Limits {
            cpu_time: Duration::from_secs(5),
            ..Limits::default()
        },
        cache_dir: Some(tempfile::tempdir().unwrap().keep()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let plugin = runtime
        .load(&std::fs::read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED).unwrap())
        .await
        .unwrap();
    let ctx = IntegrationContext::new("wb")
        .with_config("base_url", base)
        .with_grant(OperatorGrant {
            hosts: vec![base.to_string()],
            allow_loopback: true,
            ..OperatorGrant::default()
        })
        .with_credentials(Arc::new(StaticCredentials::new(
            "authorization",
            "Bearer ",
            &Secret::new("t0k3n"),
        )));
    let mut session = plugin.session(&ctx).await.unwrap();
    let file = RemoteFile {
        id: id.into(),
        name: format!("{id}.jpg"),
        mime_type: None,
        size: None,
        modified: None,
        version: "1".into(),
        container: None,
        web_url: None,
        path: None,
        properties: vec![],
    };
    let spec = session.download(&file).await.unwrap();
    match session.fetcher().open_answer(&spec).await.unwrap() {
        Content::Remote(r) => r,
        other => panic!("expected remote content, got {other:?}"),
    }
}

#[tokio::test]
async fn a_202_or_204_is_not_content_but_not_ready_with_the_platforms_retry_after() {
    let base = serve().await;
    let spool = tempfile::tempdir().unwrap();

    let pending = remote(&base, "pending").await;
    for err in [
        pending.read_range(0, 1024, 1 << 20).await.unwrap_err(),
        pending.read_all(1 << 20).await.unwrap_err(),
        pending
            .download(1 << 20, 1024, spool.path())
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(err, FetchError::NotReady { status: 202, .. }),
            "{err:?}"
        );
        assert!(err.is_retryable(), "{err}");
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)), "{err}");
        assert!(err.to_string().contains("not ready"), "{err}");
    }

    let empty = remote(&base, "empty").await;
    let err = empty.read_range(0, 1024, 1 << 20).await.unwrap_err();
    assert!(
        matches!(err, FetchError::NotReady { status: 204, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());

    // Any 2xx but 200/206 on a content request: not the file.
    let created = remote(&base, "created").await;
    let err = created.read_all(1 << 20).await.unwrap_err();
    assert!(
        matches!(err, FetchError::NotReady { status: 201, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_web_page_answered_for_a_file_is_never_content_but_a_sign_in_page_to_retry() {
    let base = serve().await;
    let spool = tempfile::tempdir().unwrap();

    let signin = remote(&base, "signin").await;
    for err in [
        signin.read_range(0, 1024, 1 << 20).await.unwrap_err(),
        signin.read_all(1 << 20).await.unwrap_err(),
        signin
            .download(1 << 20, 1024, spool.path())
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(&err, FetchError::SignInPage { content_type, .. } if content_type == "text/html"),
            "{err:?}"
        );
        // Retried with back-off, then parked with the reason by the attempt limit.
        assert!(err.is_retryable(), "{err}");
        let text = err.to_string();
        assert!(text.contains("sign-in page"), "{text}");
        assert!(text.contains("file-read permission"), "{text}");
    }

    let xhtml = remote(&base, "xhtml").await;
    let err = xhtml.read_range(0, 10, 1 << 20).await.unwrap_err();
    assert!(
        matches!(&err, FetchError::SignInPage { content_type, .. } if content_type == "application/xhtml+xml"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_body_cut_off_before_its_content_length_is_an_error_never_a_shorter_file() {
    let base = serve_cut().await;
    let spool = tempfile::tempdir().unwrap();
    let cut = remote(&base, "cut").await;
    let errs = [
        cut.read_all(1 << 20).await.unwrap_err(),
        cut.download(1 << 20, 1 << 20, spool.path())
            .await
            .unwrap_err(),
        // A range the server ignores, asking for bytes the body never delivered.
        cut.read_range(2000, 100, 1 << 20).await.unwrap_err(),
    ];
    for err in errs {
        assert!(matches!(err, FetchError::Failed(_)), "{err:?}");
        assert!(err.is_retryable(), "{err}");
    }
}

#[tokio::test]
async fn a_large_download_is_spooled_to_disk_past_the_memory_limit() {
    let base = serve().await;
    let spool = tempfile::tempdir().unwrap();
    let big = remote(&base, "big").await;

    // Over the memory limit: a file, not a buffer, with every byte.
    let body = big
        .download(1 << 20, 64 * 1024, &spool.path().join("tmp"))
        .await
        .unwrap();
    assert_eq!(body.len(), BIG as u64);
    let Body::Spooled { mut file, len } = body else {
        panic!("a {BIG}-byte body over a 64 KiB limit must be spooled")
    };
    assert_eq!(len, BIG as u64);
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).unwrap();
    assert_eq!(bytes, pattern(BIG));
    // The spool file is anonymous: nothing is left in the directory.
    assert_eq!(
        std::fs::read_dir(spool.path().join("tmp")).unwrap().count(),
        0
    );

    // Under the limit: in memory.
    let body = big.download(1 << 20, 1 << 20, spool.path()).await.unwrap();
    assert!(
        matches!(&body, Body::Memory(b) if *b == pattern(BIG)),
        "{}",
        body.len()
    );

    // Over the size allowed: refused, whatever the memory limit.
    let err = big
        .download(BIG as u64 - 1, 1024, spool.path())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::TooLarge(_)), "{err:?}");
}

#[tokio::test]
async fn a_server_that_ignores_ranges_yields_the_asked_window() {
    let base = serve().await;
    let big = remote(&base, "big").await;
    let (bytes, total) = big.read_range(200_000, 16, 1 << 20).await.unwrap();
    assert_eq!(bytes, pattern(BIG)[200_000..200_016].to_vec());
    assert_eq!(total, Some(BIG as u64));
    // A window past the size allowed is refused, not read.
    let err = big.read_range(200_000, 16, 100_000).await.unwrap_err();
    assert!(matches!(err, FetchError::TooLarge(_)), "{err:?}");
}
