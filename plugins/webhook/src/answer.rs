//! What a receiver's answer means, as one of the contract's errors the host acts on.
//!
//! The receiver is anyone's endpoint: a Zapier catch hook, a Power Automate HTTP trigger, a
//! script. Its body is untrusted and may echo the request, so an error quotes at most
//! [`MAX_EXCERPT_CHARS`] characters of it, on one line, with URL- and path-like words redacted
//! ([`excerpt`]). The plugin itself never knows the URL: the host hands back `{secret.url}` in
//! its place.
//!
//! | answer | error | the host then |
//! |---|---|---|
//! | 2xx | none | audits the delivery |
//! | 404, 410 | `invalid-config` on `url` | stops and reports: the hook was deleted or the URL is wrong |
//! | 401, 403 | `invalid-config` on `signing_secret`, or on `url` when a Power Automate / Azure error code says the URL's own `sig` is wrong | stops and reports what to fix |
//! | 429 | `rate-limited`, `Retry-After` (seconds or an HTTP date) or [`DEFAULT_RETRY_AFTER_MS`] | waits and retries |
//! | 503 with `Retry-After` | `rate-limited` with it | waits and retries |
//! | 408, 5xx | `transient` | retries with back-off |
//! | 413 | `fatal`, suggesting a smaller `max_findings` | reports |
//! | any other | `fatal` with the excerpt | reports |
//!
//! `unauthorized` is deliberately not used for 401: it makes the host refresh credentials and
//! retry, and a webhook has no credentials the host could refresh.

use proofpix_sdk::prelude::*;

/// Longest excerpt of a receiver's body quoted in an error.
pub const MAX_EXCERPT_CHARS: usize = 200;
/// How long to wait after a 429 without a usable `Retry-After` (the Python example's value).
pub const DEFAULT_RETRY_AFTER_MS: u64 = 30_000;

/// What the plugin knows about the request it sent, for messages.
#[derive(Debug, Clone, Copy)]
pub struct Sent<'a> {
    /// The webhook integration's id, for the `set-secret` command in messages.
    pub integration_id: &'a str,
    /// Whether the request carried a signature.
    pub signed: bool,
}

/// Maps a receiver's answer to `Ok` or the contract's error. `retry_after` is the raw header;
/// `now_ms` is the wall clock, to turn an HTTP date into a wait.
pub fn classify(
    status: u16,
    body: &str,
    retry_after: Option<&str>,
    now_ms: u64,
    sent: Sent<'_>,
) -> Result<(), PluginError> {
    let excerpt = excerpt(body);
    let quoted = if excerpt.is_empty() {
        String::new()
    } else {
        format!(": {excerpt}")
    };
    let wait = retry_after.and_then(|v| retry_after_ms(v, now_ms));
    let id = sent.integration_id;
    match status {
        200..=299 => Ok(()),
        404 | 410 => Err(PluginError::invalid_config(
            Some("url"),
            format!(
                "the webhook answered HTTP {status}: the hook was deleted or the URL is wrong; \
                 copy the URL again from the receiving app and set it with \
                 `proofpix integration set-secret {id} url`"
            ),
        )),
        401 | 403 => {
            // Power Automate / Logic Apps answer a wrong or missing `sig` query parameter with
            // a JSON error carrying a code; our signature is never what they check.
            if let Some(code) = azure_error_code(body) {
                return Err(PluginError::invalid_config(
                    Some("url"),
                    format!(
                        "the webhook refused the request (HTTP {status}, {code}): the URL is \
                         incomplete or was regenerated; copy the whole HTTP POST URL from the \
                         flow's trigger and set it with `proofpix integration set-secret {id} url`"
                    ),
                ));
            }
            let fix = if sent.signed {
                format!(
                    "check that `signing_secret` is the key the receiver verifies with (set it \
                     with `proofpix integration set-secret {id} signing_secret`) and that the \
                     receiver checks `x-proofpix-signature` as the plugin documents it"
                )
            } else {
                format!(
                    "the request was not signed; if the receiver expects a signature, set \
                     `signing_secret` with `proofpix integration set-secret {id} signing_secret`"
                )
            };
            Err(PluginError::invalid_config(
                Some("signing_secret"),
                format!("the webhook refused the request (HTTP {status}){quoted}; {fix}"),
            ))
        }
        429 => Err(PluginError::rate_limited(
            Some(wait.unwrap_or(DEFAULT_RETRY_AFTER_MS)),
            format!("the webhook asked to slow down (HTTP 429){quoted}"),
        )),
        503 if wait.is_some() => Err(PluginError::rate_limited(
            wait,
            format!(
                "the webhook is unavailable (HTTP 503){quoted}; retrying after its Retry-After"
            ),
        )),
        408 | 500..=599 => Err(PluginError::transient(format!(
            "the webhook failed (HTTP {status}){quoted}; retrying"
        ))),
        413 => Err(PluginError::fatal(format!(
            "the webhook refused the payload as too large (HTTP 413){quoted}; lower \
             `max_findings`, or turn off digests in the subscriptions"
        ))),
        _ => Err(PluginError::fatal(format!(
            "the webhook answered HTTP {status}{quoted}"
        ))),
    }
}

/// At most [`MAX_EXCERPT_CHARS`] characters of `body`, trimmed, on one line (control
/// characters become spaces), with every URL- or path-like word replaced by `[url]`.
///
/// The redaction is a heuristic, and deliberately eager: receivers and the proxies in front of
/// them echo the request line in error pages (`no route for POST /hooks/catch/123/abc`), and
/// that path or query is the hook's credential. A word is redacted when it contains `://`, two
/// or more `/`, or a `sig=` parameter (Power Automate's signature).
pub fn excerpt(body: &str) -> String {
    let one_line: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let redacted: Vec<&str> = one_line
        .split(' ')
        .map(|word| if looks_like_url(word) { "[url]" } else { word })
        .collect();
    redacted
        .join(" ")
        .trim()
        .chars()
        .take(MAX_EXCERPT_CHARS)
        .collect::<String>()
        .trim_end()
        .to_string()
}

fn looks_like_url(word: &str) -> bool {
    word.contains("://")
        || word.matches('/').count() >= 2
        || word.to_ascii_lowercase().contains("sig=")
}

/// `error.code` of a Microsoft JSON error body (`{"error":{"code":"…","message":"…"}}`).
fn azure_error_code(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let code = v.pointer("/error/code")?.as_str()?;
    // A code is an identifier; anything else is not worth quoting.
    (!code.is_empty() && code.len() <= 80 && code.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| code.to_string())
}

/// A `Retry-After` value as a wait in milliseconds: delay-seconds (`120`, and the fractional
/// `1.5` some servers send) or an HTTP date (RFC 9110 §5.6.7, all three forms), counted from
/// `now_ms`. A date in the past means "now" (0). `None` when the value is neither.
///
/// | value | wait |
/// |---|---|
/// | `7` | 7000 |
/// | `0.25` | 250 |
/// | `Sun, 06 Nov 1994 08:49:37 GMT` (IMF-fixdate) | until then |
/// | `Sunday, 06-Nov-94 08:49:37 GMT` (RFC 850) | until then |
/// | `Sun Nov  6 08:49:37 1994` (asctime) | until then |
pub fn retry_after_ms(value: &str, now_ms: u64) -> Option<u64> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs.saturating_mul(1000));
    }
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then_some((secs * 1000.0) as u64);
    }
    let at = http_date_ms(v)?;
    Some(at.saturating_sub(now_ms))
}

/// Milliseconds since the Unix epoch of an HTTP date in any of its three forms.
fn http_date_ms(value: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let mut month = None;
    let mut time = None;
    let mut numbers = Vec::new();
    for token in value.split([' ', ',', '-']).filter(|t| !t.is_empty()) {
        if token.contains(':') {
            time = Some(parse_time(token)?);
        } else if token.chars().all(|c| c.is_ascii_digit()) {
            numbers.push(token);
        } else if token.chars().all(|c| c.is_ascii_alphabetic()) {
            let lower = token.to_ascii_lowercase();
            if let Some(i) = MONTHS.iter().position(|m| *m == lower) {
                month = Some(i as i64 + 1);
            } else if !(lower == "gmt" || lower == "utc" || is_weekday(&lower)) {
                return None;
            }
        } else {
            return None;
        }
    }
    // Day comes before year in all three forms.
    let [day, year] = numbers.as_slice() else {
        return None;
    };
    let day: i64 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let year: i64 = match year.len() {
        // RFC 850's two-digit year: RFC 9110 says to read it as the most recent past year with
        // those digits; 70 is the usual pivot.
        2 => year
            .parse::<i64>()
            .ok()
            .map(|y| if y < 70 { 2000 + y } else { 1900 + y })?,
        4 => year.parse().ok()?,
        _ => return None,
    };
    let (h, m, s) = time?;
    let days = days_from_civil(year, month?, day);
    let secs = days * 86_400 + h * 3600 + m * 60 + s;
    u64::try_from(secs).ok()?.checked_mul(1000)
}

fn is_weekday(lower: &str) -> bool {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    DAYS.iter().any(|d| lower.starts_with(d)) && lower.len() <= 9
}

fn parse_time(token: &str) -> Option<(i64, i64, i64)> {
    let mut parts = token.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    (parts.next().is_none()
        && (0..24).contains(&h)
        && (0..60).contains(&m)
        && (0..=60).contains(&s))
    .then_some((h, m, s))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1994-11-06T08:49:37Z, the RFC's example date.
    const RFC_EXAMPLE_MS: u64 = 784_111_777_000;

    const SIGNED: Sent<'static> = Sent {
        integration_id: "zap",
        signed: true,
    };

    fn err(status: u16, body: &str, retry_after: Option<&str>) -> PluginError {
        classify(status, body, retry_after, RFC_EXAMPLE_MS, SIGNED).unwrap_err()
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_any_http_date() {
        let cases = [
            ("7", Some(7_000)),
            (" 120 ", Some(120_000)),
            ("0.25", Some(250)),
            ("Sun, 06 Nov 1994 08:50:07 GMT", Some(30_000)),
            ("Sunday, 06-Nov-94 08:50:07 GMT", Some(30_000)),
            ("Sun Nov  6 08:50:07 1994", Some(30_000)),
            // A date in the past means "now".
            ("Sun, 06 Nov 1994 08:00:00 GMT", Some(0)),
            ("-5", None),
            ("soon", None),
            ("", None),
            ("Sun, 06 Nov 1994 25:00:00 GMT", None),
            ("Sun, 06 Foo 1994 08:50:07 GMT", None),
            ("Sun, 06 Nov 1994 08:50:07 +0200", None),
            ("NaN", None),
        ];
        for (value, expected) in cases {
            assert_eq!(retry_after_ms(value, RFC_EXAMPLE_MS), expected, "{value:?}");
        }
    }

    #[test]
    fn dates_convert_to_the_right_epoch_milliseconds() {
        assert_eq!(
            http_date_ms("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(RFC_EXAMPLE_MS)
        );
        assert_eq!(http_date_ms("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            http_date_ms("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(1_835_438_400_000)
        );
    }

    #[test]
    fn two_hundreds_are_delivered() {
        for status in [200, 201, 202, 204] {
            assert!(classify(status, "", None, 0, SIGNED).is_ok(), "{status}");
        }
    }

    #[test]
    fn a_deleted_hook_names_the_url_field_without_quoting_the_url() {
        for status in [404, 410] {
            let e = err(status, "hook https://hooks.example/abc not found", None);
            let PluginError::InvalidConfig(p) = &e else {
                panic!("{status}: {e:?}")
            };
            assert_eq!(p.field.as_deref(), Some("url"));
            assert_eq!(
                p.message,
                format!(
                    "the webhook answered HTTP {status}: the hook was deleted or the URL is \
                     wrong; copy the URL again from the receiving app and set it with \
                     `proofpix integration set-secret zap url`"
                )
            );
        }
    }

    #[test]
    fn a_refusal_blames_the_signing_secret_or_a_power_automate_sig() {
        let e = err(401, "bad signature", None);
        assert!(
            matches!(&e, PluginError::InvalidConfig(p) if p.field.as_deref() == Some("signing_secret")
                && p.message.starts_with("the webhook refused the request (HTTP 401): bad signature; check that `signing_secret`")),
            "{e:?}"
        );
        let unsigned = classify(
            403,
            "",
            None,
            0,
            Sent {
                integration_id: "zap",
                signed: false,
            },
        )
        .unwrap_err();
        assert!(
            unsigned.message().contains("the request was not signed"),
            "{unsigned:?}"
        );
        let azure = err(
            401,
            r#"{"error":{"code":"DirectApiAuthorizationRequired","message":"…"}}"#,
            None,
        );
        assert!(
            matches!(&azure, PluginError::InvalidConfig(p) if p.field.as_deref() == Some("url")
                && p.message.contains("HTTP 401, DirectApiAuthorizationRequired")),
            "{azure:?}"
        );
    }

    #[test]
    fn throttling_waits_for_retry_after_or_the_default() {
        let with = err(429, "slow down", Some("7"));
        assert!(
            matches!(&with, PluginError::RateLimited(r) if r.retry_after_ms == Some(7_000)
                && r.message == "the webhook asked to slow down (HTTP 429): slow down"),
            "{with:?}"
        );
        let date = err(429, "", Some("Sun, 06 Nov 1994 08:49:47 GMT"));
        assert!(
            matches!(&date, PluginError::RateLimited(r) if r.retry_after_ms == Some(10_000)),
            "{date:?}"
        );
        for header in [None, Some("later")] {
            let e = err(429, "", header);
            assert!(
                matches!(&e, PluginError::RateLimited(r) if r.retry_after_ms == Some(DEFAULT_RETRY_AFTER_MS)),
                "{header:?}: {e:?}"
            );
        }
        assert!(matches!(
            err(503, "", Some("2")),
            PluginError::RateLimited(r) if r.retry_after_ms == Some(2_000)
        ));
    }

    #[test]
    fn server_errors_and_timeouts_are_retried() {
        for status in [408, 500, 502, 503, 504] {
            assert!(
                matches!(err(status, "oops", None), PluginError::Transient(_)),
                "{status}"
            );
        }
    }

    #[test]
    fn other_refusals_are_reported_with_an_excerpt() {
        assert!(matches!(
            err(400, "missing field", None),
            PluginError::Fatal(m) if m == "the webhook answered HTTP 400: missing field"
        ));
        assert!(matches!(
            err(413, "", None),
            PluginError::Fatal(m) if m.contains("`max_findings`")
        ));
        assert!(matches!(
            err(302, "", None),
            PluginError::Fatal(m) if m == "the webhook answered HTTP 302"
        ));
    }

    #[test]
    fn an_excerpt_is_at_most_200_characters_on_one_line() {
        let long = format!("line one\nline two {}", "é".repeat(500));
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), MAX_EXCERPT_CHARS);
        assert!(e.starts_with("line one line two é"));
        assert!(!e.contains('\n'));
        let PluginError::Transient(m) = err(500, &long, None) else {
            panic!()
        };
        assert!(m.chars().count() < MAX_EXCERPT_CHARS + 60, "{m}");
    }

    /// A receiver that echoes the request line would otherwise quote the hook's token.
    #[test]
    fn an_excerpt_never_quotes_a_url_or_a_path() {
        let cases = [
            (
                "no route for POST https://hooks.example/catch/123/abc",
                "no route for POST [url]",
            ),
            ("Cannot POST /hooks/catch/123/abc", "Cannot POST [url]"),
            (r#"{"error":"bad","url":"http://h/x?sig=abc"}"#, "[url]"),
            ("invoke?api-version=1&sig=AbC failed", "[url] failed"),
            ("<html>Bad gateway</html>", "<html>Bad gateway</html>"),
            ("expected text/plain", "expected text/plain"),
        ];
        for (body, expected) in cases {
            assert_eq!(excerpt(body), expected, "{body:?}");
        }
    }
}
