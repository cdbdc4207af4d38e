//! Extra static headers from the `headers` config field, checked once in `validate-config`.
//!
//! Some receivers route on a fixed header (`x-team: privacy`, `x-env: prod`). The field is plain
//! config, shown in the dashboard and exported with it, so it is no place for a credential: the
//! headers a credential would ride in are refused here, with the reason, before the host would
//! refuse them on every send. So are the headers the plugin writes itself (`content-type`,
//! `x-proofpix-*`), which a receiver must be able to trust.
//!
//! | accepted | refused |
//! |---|---|
//! | `X-Team: privacy` | `X Team: privacy` (not a token) |
//! | `x-env:prod` | `x-env` (no colon) |
//! | up to [`MAX_EXTRA_HEADERS`] entries | `authorization`, `cookie`, `proxy-*`, `host`, hop-by-hop headers, `content-type`, `content-length`, `user-agent`, `x-proofpix-*` |

/// Most extra headers accepted.
pub const MAX_EXTRA_HEADERS: usize = 20;
/// Longest header value accepted; receivers and proxies commonly cap a header line at 8 KiB.
const MAX_VALUE_CHARS: usize = 1024;

/// Headers the host refuses from any plugin, or that this plugin sets itself.
const RESERVED: &[&str] = &[
    "authorization",
    "cookie",
    "host",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "content-type",
    "user-agent",
];

/// Parses the entries of the `headers` field into lowercase names and trimmed values.
///
/// # Errors
/// The first bad entry, quoted, with what is wrong; the caller names the field.
pub fn parse(entries: &[String]) -> Result<Vec<(String, String)>, String> {
    if entries.len() > MAX_EXTRA_HEADERS {
        return Err(format!(
            "{} headers given; at most {MAX_EXTRA_HEADERS} are accepted",
            entries.len()
        ));
    }
    entries.iter().map(|e| parse_one(e)).collect()
}

fn parse_one(entry: &str) -> Result<(String, String), String> {
    let Some((name, value)) = entry.split_once(':') else {
        return Err(format!("{entry:?} is not `Name: value`"));
    };
    let name = name.trim().to_ascii_lowercase();
    let value = value.trim();
    if name.is_empty() || !name.bytes().all(is_token_char) {
        return Err(format!("{name:?} is not a valid header name"));
    }
    if name == "authorization" || name == "cookie" || name.starts_with("proxy-") {
        return Err(format!(
            "`{name}` would carry a credential in plain config, and the host refuses it from \
             plugins; keep the receiver's token in the sealed `url`, or have the receiver \
             verify `x-proofpix-signature`"
        ));
    }
    if RESERVED.contains(&name.as_str()) || name.starts_with("x-proofpix-") {
        return Err(format!("`{name}` is set by the host or the plugin itself"));
    }
    if value.is_empty() {
        return Err(format!("`{name}` has no value"));
    }
    if value.chars().count() > MAX_VALUE_CHARS || value.chars().any(|c| c.is_control() && c != '\t')
    {
        return Err(format!(
            "the value of `{name}` must be one line of at most {MAX_VALUE_CHARS} characters"
        ));
    }
    Ok((name, value.to_string()))
}

/// RFC 9110 `tchar`.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(entry: &str) -> Result<(String, String), String> {
        parse(&[entry.to_string()]).map(|mut v| v.remove(0))
    }

    #[test]
    fn simple_headers_are_lowercased_and_trimmed() {
        assert_eq!(
            parse(&["X-Team: privacy".into(), "x-env:prod".into()]).unwrap(),
            [
                ("x-team".to_string(), "privacy".to_string()),
                ("x-env".into(), "prod".into())
            ]
        );
        assert_eq!(parse(&[]).unwrap(), []);
    }

    #[test]
    fn credentials_and_the_plugins_own_headers_are_refused_with_the_reason() {
        let cases = [
            ("Authorization: Bearer x", "would carry a credential"),
            ("proxy-authorization: x", "would carry a credential"),
            ("Cookie: a=b", "would carry a credential"),
            (
                "x-proofpix-signature: v1=00",
                "set by the host or the plugin",
            ),
            ("Content-Type: text/plain", "set by the host or the plugin"),
            ("Host: evil.example", "set by the host or the plugin"),
            ("X Team: a", "not a valid header name"),
            ("x-team", "is not `Name: value`"),
            ("x-team:", "has no value"),
        ];
        for (entry, expected) in cases {
            let e = one(entry).unwrap_err();
            assert!(e.contains(expected), "{entry:?}: {e}");
        }
        let too_many: Vec<String> = (0..=MAX_EXTRA_HEADERS)
            .map(|i| format!("x-{i}: v"))
            .collect();
        assert!(parse(&too_many).is_err());
    }
}
