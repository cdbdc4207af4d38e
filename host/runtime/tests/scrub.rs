//! The scrubber, as a property: for any secret and any surrounding text, no
//! spelling of the secret (raw, percent-, base64- or JSON-encoded, the
//! encodings computed here with the usual libraries, not the scrubber's own
//! code) survives scrubbing; and text without the secret is left unchanged.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use proofpix_runtime::Scrubber;
use proofpix_runtime::scrub::{MIN_ENCODED_LEN, REDACTED};
use proptest::prelude::*;

/// What the replacement is swapped for before looking for leaks: the
/// replacement's own letters (`[redacted]` holds `a`, `d`, `e`) are no leak.
const MARK: &str = "\u{0}";
const MARK_CHAR: char = '\u{0}';

/// The spellings of `secret` as other software writes them, each inside the
/// encoding of `prefix + secret + suffix` where the encoding runs on.
fn encodings(secret: &str, prefix: &[u8], suffix: &[u8]) -> Vec<(&'static str, String)> {
    let mut out = vec![
        (
            "form",
            url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>(),
        ),
        ("json", serde_json::to_string(secret).unwrap_or_default()),
    ];
    // The URL parser's own escaping of a path segment.
    if let Ok(mut u) = url::Url::parse("https://example.com/") {
        if let Ok(mut segs) = u.path_segments_mut() {
            segs.pop_if_empty().push(secret);
        }
        out.push(("segment", u.path().trim_start_matches('/').to_string()));
    }
    let mut data = prefix.to_vec();
    data.extend_from_slice(secret.as_bytes());
    data.extend_from_slice(suffix);
    for (name, engine) in [("base64", STANDARD), ("base64url", URL_SAFE)] {
        out.push((name, engine.encode(&data)));
    }
    for (name, engine) in [
        ("base64-nopad", STANDARD_NO_PAD),
        ("base64url-nopad", URL_SAFE_NO_PAD),
    ] {
        out.push((name, engine.encode(&data)));
    }
    // JSON of a percent-encoded URL holding it, as an API echoing a request would.
    out.push((
        "json-of-form",
        serde_json::to_string(&format!(
            "https://h/?k={}",
            url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>()
        ))
        .unwrap_or_default(),
    ));
    out
}

/// Whether `text` still carries the secret in the spelling `enc` of
/// `prefix + secret + suffix`: for base64, whether decoding any base64 run in
/// the text at any alignment gives back the secret.
fn survives(text: &str, secret: &str, name: &str, enc: &str) -> bool {
    if name.starts_with("base64") {
        let alphabet = |c: char| {
            c.is_ascii_alphanumeric()
                || if name.starts_with("base64url") {
                    c == '-' || c == '_'
                } else {
                    c == '+' || c == '/'
                }
        };
        let engine = if name.starts_with("base64url") {
            URL_SAFE_NO_PAD
        } else {
            STANDARD_NO_PAD
        };
        return text.split(|c: char| !alphabet(c)).any(|run| {
            (0..4).any(|skip| {
                let run = run.get(skip..).unwrap_or_default();
                let usable = run.len() - run.len() % 4;
                engine
                    .decode(run.get(..usable).unwrap_or_default())
                    .is_ok_and(|bytes| bytes.windows(secret.len()).any(|w| w == secret.as_bytes()))
            })
        });
    }
    let inner = match name {
        "json" => enc.trim_matches('"').to_string(),
        "json-of-form" => enc
            .trim_matches('"')
            .trim_start_matches("https://h/?k=")
            .to_string(),
        _ => enc.to_string(),
    };
    text.contains(&inner)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// No spelling of a secret of 8 bytes or more survives.
    #[test]
    fn no_encoding_of_a_secret_survives(
        secret in "[ -~]{8,40}|\\PC{8,24}",
        before in "\\PC{0,40}",
        after in "\\PC{0,40}",
        prefix in proptest::collection::vec(any::<u8>(), 0..5),
        suffix in proptest::collection::vec(any::<u8>(), 0..5),
    ) {
        prop_assume!(secret.trim().len() >= MIN_ENCODED_LEN);
        let scrubber = Scrubber::new([secret.as_str()]);
        for (name, enc) in encodings(&secret, &prefix, &suffix) {
            let text = format!("{before}{enc}{after}");
            // The replacement's own letters do not count as a leak.
            let out = scrubber.scrub_str(&text).replace(REDACTED, MARK);
            prop_assert!(
                !survives(&out, &secret, name, &enc),
                "{name} of {secret:?} survived: {enc} -> {out}"
            );
            prop_assert!(!out.contains(secret.as_str()), "raw survived in {out}");
            prop_assert!(out.contains(MARK_CHAR));
        }
        let raw = format!("{before}{secret}{after}");
        prop_assert!(!scrubber.scrub_str(&raw).replace(REDACTED, MARK).contains(secret.as_str()));
    }

    /// A short secret (4 to 7 bytes) is still scrubbed raw, wherever it sits; shorter values
    /// cannot be credentials and are left alone (see `MIN_RAW_LEN`).
    #[test]
    fn a_short_secret_is_scrubbed_raw(
        secret in "[a-zA-Z0-9]{4,7}",
        before in "\\PC{0,20}",
        after in "\\PC{0,20}",
    ) {
        let scrubber = Scrubber::new([secret.as_str()]);
        let out = scrubber
            .scrub_str(&format!("{before}{secret}{after}"))
            .replace(REDACTED, MARK);
        prop_assert!(!out.contains(secret.as_str()), "{out}");
    }

    /// Text without the secret is left as it was.
    #[test]
    fn text_without_the_secret_is_unchanged(
        secret in "[ -~]{8,40}",
        text in "\\PC{0,200}",
    ) {
        prop_assume!(!text.contains(secret.as_str()));
        let scrubber = Scrubber::new([secret.as_str()]);
        let out = scrubber.scrub_str(&text).into_owned();
        prop_assert_eq!(out, text);
    }
}

#[test]
fn secrets_in_a_json_response_and_a_basic_header_are_scrubbed() {
    let key = "sk-live-7f3a9c2e51d84b06a1e9";
    let scrubber = Scrubber::new([key]);
    let basic = STANDARD.encode(format!("api:{key}"));
    let body = format!(r#"{{"headers":{{"authorization":"Basic {basic}","x-key":"{key}"}}}}"#);
    let out = scrubber.scrub_str(&body);
    assert!(!out.contains(key), "{out}");
    assert!(!out.contains(&basic), "{out}");
    assert!(out.contains(r#""x-key":"[redacted]""#), "{out}");
}
