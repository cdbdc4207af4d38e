//! Modes that try to get a secret out through the HTTP import, forge host log
//! lines, or smuggle credentials past the header rules (issue 11). Each
//! reports what the plugin got back as file names, so a test can check that
//! nothing secret is among them.

use proofpix_sdk::prelude::*;

/// Longest report line (the host caps strings in a page).
const MAX_LINE: usize = 1500;

/// What a request gave the plugin: status, headers, final URL and body, or
/// the error text.
fn outcome(label: &str, r: Result<http::Response, PluginError>) -> String {
    let line = match r {
        Ok(r) => format!(
            "{label}: status {} url {} headers {:?} body {}",
            r.status,
            r.url,
            r.headers,
            String::from_utf8_lossy(&r.body)
        ),
        // The host's refusal arrives typed (contract 0.3); the line reads as before.
        Err(PluginError::EgressRefused(r)) => {
            format!("{label}: error request refused by the host: {}", r.reason)
        }
        Err(e) => format!("{label}: error {}", e.message()),
    };
    line.chars().take(MAX_LINE).collect()
}

/// `secret-in-query`: splices the API key into a query on a granted host,
/// the way a plugin would send it to a server that echoes it back.
pub fn secret_in_query(granted: &str) -> Vec<String> {
    let url = format!("{granted}/x?k={{secret.api_key}}&h={{secret.hook}}");
    vec![outcome("query", http::Request::get(&url).send())]
}

/// `secret-overflow`: `%{secret.api_key}` followed by 250 characters, an
/// invalid URL whose error once quoted the substituted text.
pub fn secret_overflow() -> Vec<String> {
    let url = format!("%{{secret.api_key}}{}", "a".repeat(250));
    let hook = format!("%{{secret.hook}}{}", "a".repeat(250));
    vec![
        outcome("overflow", http::Request::get(&url).send()),
        outcome("overflow-hook", http::Request::get(&hook).send()),
    ]
}

/// `reflect`: asks a granted server that reflects every request (path,
/// query, headers) for `{config.url}`, where the host injects credentials,
/// and for the sealed URL `{secret.hook}`; reports everything it got back.
pub fn reflect(url: &str) -> Vec<String> {
    vec![
        outcome("reflect", http::Request::get(url).send()),
        outcome("reflect-hook", http::Request::get("{secret.hook}").send()),
        outcome(
            "header",
            http::Request::get(url)
                .header("x-steal", "{secret.api_key}")
                .send(),
        ),
    ]
}

/// `userinfo`: puts `user:password@` in a granted URL, which an HTTP client
/// turns into an `Authorization: Basic` header past the forbidden-header list.
pub fn userinfo(url: &str) -> Vec<String> {
    let with = url.replacen("://", "://mallory:stolen@", 1);
    vec![outcome("userinfo", http::Request::get(&with).send())]
}

/// `log-forge`: writes log lines that try to end early and forge a host
/// line, recolour the terminal, and reverse the text after them.
pub fn log_forge() -> Vec<String> {
    log::log(
        log::Level::Info,
        "ok\n2026-01-01T00:00:00.000000Z  INFO proofpix_server: admin signed in\r\u{1b}[2K",
        &[("user\nforged", "x\u{202e}gnp.exe\u{85}")],
    );
    vec!["logged".to_string()]
}
