//! Scrubbing secrets out of what a plugin receives, by value.
//!
//! Threat: a plugin that gets a secret back in something the host hands it.
//! A granted server that reflects the request (its body, an error page, a
//! header) returns the injected API key or the sealed URL; an error message
//! quotes part of a URL; a plugin logs a response it should not have seen.
//! Checking for the placeholder is not enough: the secret travels in many
//! spellings, so a [`Scrubber`] knows each secret's raw, percent-encoded
//! (strict, component, path, path segment, query, userinfo and form styles, upper- and
//! lowercase hex), base64 (standard and URL-safe, at each of the three
//! alignments inside a longer base64 run, so padding and neighbours do not
//! matter) and JSON-escaped spellings, and replaces each with
//! [`REDACTED`].
//!
//! Secrets shorter than [`MIN_ENCODED_LEN`] bytes are scrubbed raw only:
//! their encodings are too short to tell from ordinary text. Values shorter
//! than [`MIN_RAW_LEN`] bytes are not scrubbed at all: one to three bytes
//! occur everywhere, so replacing them would corrupt every response (a file
//! id, a word in an error) while protecting nothing, since no credential is
//! that short.

use std::borrow::Cow;
use std::fmt;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Secrets at least this long are scrubbed in their encoded spellings too.
pub const MIN_ENCODED_LEN: usize = 8;

/// Secrets shorter than this are not scrubbed (see the module docs).
pub const MIN_RAW_LEN: usize = 4;

/// Replaces every known spelling of a set of secrets with [`REDACTED`].
#[derive(Clone, Default)]
pub struct Scrubber {
    matcher: Option<AhoCorasick>,
    needles: usize,
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scrubber")
            .field("spellings", &self.needles)
            .finish()
    }
}

impl Scrubber {
    /// A scrubber for these secret values (empty values are ignored).
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let mut needles: Vec<Vec<u8>> = secrets
            .into_iter()
            .flat_map(|s| spellings(s.as_ref()))
            .collect();
        needles.sort();
        needles.dedup();
        if needles.is_empty() {
            return Scrubber::default();
        }
        // Leftmost-longest, so a secret that contains another is replaced
        // whole rather than leaving the rest of it behind.
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&needles)
            .ok();
        Scrubber {
            needles: if matcher.is_some() { needles.len() } else { 0 },
            matcher,
        }
    }

    /// Whether there is nothing to scrub.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// Whether `haystack` holds any spelling of a secret.
    pub fn finds(&self, haystack: &[u8]) -> bool {
        self.matcher.as_ref().is_some_and(|m| m.is_match(haystack))
    }

    /// The bytes with every spelling replaced; borrowed (no copy) when there
    /// is none.
    pub fn scrub_bytes<'a>(&self, input: &'a [u8]) -> Cow<'a, [u8]> {
        match &self.matcher {
            Some(m) if m.is_match(input) => {
                let mut out = Vec::with_capacity(input.len());
                m.replace_all_with_bytes(input, &mut out, |_, _, dst| {
                    dst.extend_from_slice(REDACTED.as_bytes());
                    true
                });
                Cow::Owned(out)
            }
            _ => Cow::Borrowed(input),
        }
    }

    /// [`Scrubber::scrub_bytes`] for an owned buffer (a response body).
    pub fn scrub_vec(&self, input: Vec<u8>) -> Vec<u8> {
        match self.scrub_bytes(&input) {
            Cow::Borrowed(_) => input,
            Cow::Owned(o) => o,
        }
    }

    /// The text with every spelling replaced.
    pub fn scrub_str<'a>(&self, input: &'a str) -> Cow<'a, str> {
        match self.scrub_bytes(input.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(input),
            Cow::Owned(o) => Cow::Owned(String::from_utf8_lossy(&o).into_owned()),
        }
    }

    /// [`Scrubber::scrub_str`] for an owned string.
    pub fn scrub_string(&self, input: String) -> String {
        match self.scrub_str(&input) {
            Cow::Borrowed(_) => input,
            Cow::Owned(o) => o,
        }
    }
}

/// Every spelling of one secret the scrubber looks for.
pub fn spellings(secret: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let trimmed = secret.trim_ascii();
    for s in [secret, trimmed] {
        if s.len() < MIN_RAW_LEN {
            continue;
        }
        out.push(s.to_vec());
        if s.len() < MIN_ENCODED_LEN {
            continue;
        }
        for keep in [
            keep_unreserved as fn(u8) -> bool,
            keep_component,
            keep_form,
            keep_path,
            keep_segment,
            keep_special_segment,
            keep_query,
            keep_userinfo,
        ] {
            for upper in [true, false] {
                out.push(percent(s, keep, upper, false));
                out.push(percent(s, keep, upper, true));
            }
        }
        for k in 0..3usize {
            let mut data = vec![0u8; k];
            data.extend_from_slice(s);
            let (start, end) = ((8 * k).div_ceil(6), (8 * (k + s.len())) / 6);
            for engine in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
                let enc = engine.encode(&data);
                if let Some(core) = enc.as_bytes().get(start..end) {
                    out.push(core.to_vec());
                }
            }
        }
        if let Ok(text) = std::str::from_utf8(s) {
            for style in [
                JsonStyle::Minimal,
                JsonStyle::Slash,
                JsonStyle::Ascii,
                JsonStyle::All,
            ] {
                for upper in [false, true] {
                    out.push(json_escape(text, style, upper).into_bytes());
                }
            }
        }
    }
    out.retain(|n| !n.is_empty());
    out.sort();
    out.dedup();
    out
}

fn keep_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// JavaScript's `encodeURIComponent`.
fn keep_component(b: u8) -> bool {
    keep_unreserved(b) || matches!(b, b'!' | b'*' | b'\'' | b'(' | b')')
}

/// `application/x-www-form-urlencoded`.
fn keep_form(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_')
}

/// The URL standard's path percent-encode set, what `url` leaves in a path.
fn keep_path(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'"' | b'#' | b'<' | b'>' | b'?' | b'`' | b'{' | b'}')
}

/// The path-segment set: a path plus `/` and `%` (`url`'s `path_segments_mut`).
fn keep_segment(b: u8) -> bool {
    keep_path(b) && b != b'/' && b != b'%'
}

/// A path segment of an http(s) URL, where `\\` is a separator too.
fn keep_special_segment(b: u8) -> bool {
    keep_segment(b) && b != b'\\'
}

/// The special-query percent-encode set.
fn keep_query(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'"' | b'#' | b'<' | b'>' | b'\'')
}

/// The userinfo percent-encode set.
fn keep_userinfo(b: u8) -> bool {
    keep_path(b)
        && !matches!(
            b,
            b'/' | b':' | b';' | b'=' | b'@' | b'[' | b'\\' | b']' | b'^' | b'|'
        )
}

fn percent(s: &[u8], keep: fn(u8) -> bool, upper: bool, space_plus: bool) -> Vec<u8> {
    const UPPER: &[u8; 16] = b"0123456789ABCDEF";
    const LOWER: &[u8; 16] = b"0123456789abcdef";
    let hex = if upper { UPPER } else { LOWER };
    let mut out = Vec::with_capacity(s.len() * 3);
    for &b in s {
        if space_plus && b == b' ' {
            out.push(b'+');
        } else if keep(b) {
            out.push(b);
        } else {
            out.push(b'%');
            out.push(hex[usize::from(b >> 4)]);
            out.push(hex[usize::from(b & 0xf)]);
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum JsonStyle {
    /// Only what JSON requires (serde_json, Go without HTML escaping).
    Minimal,
    /// Also `/` as `\/` (PHP).
    Slash,
    /// Everything outside ASCII as `\uXXXX` (Python's default, Go's HTML-safe `<>&`).
    Ascii,
    /// Every character but letters and digits as `\uXXXX`.
    All,
}

fn json_escape(s: &str, style: JsonStyle, upper: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len() + 8);
    let unit = |out: &mut String, u: u16| {
        let _ = if upper {
            write!(out, "\\u{u:04X}")
        } else {
            write!(out, "\\u{u:04x}")
        };
    };
    for c in s.chars() {
        let all = style == JsonStyle::All && !c.is_ascii_alphanumeric();
        let wide = style == JsonStyle::Ascii
            && (!c.is_ascii() || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}'));
        if all || wide {
            let mut buf = [0u16; 2];
            for u in c.encode_utf16(&mut buf) {
                unit(&mut out, *u);
            }
            continue;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '/' if style == JsonStyle::Slash => out.push_str("\\/"),
            c if (c as u32) < 0x20 => unit(&mut out, c as u16),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_spelling_is_replaced() {
        let secret = "sk_live/abc+def ghi=jkl";
        let s = Scrubber::new([secret]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("user:{secret}"));
        let json = serde_json::to_string(secret).unwrap_or_default();
        let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        for text in [
            format!("x {secret} y"),
            format!("Basic {b64}"),
            format!("{{\"k\":{json}}}"),
            format!("q={form}&z"),
            format!("q={}", form.to_lowercase()),
        ] {
            let out = s.scrub_str(&text);
            assert!(out.contains(REDACTED), "{text} -> {out}");
            assert!(!out.contains("abc"), "{text} -> {out}");
        }
    }

    #[test]
    fn short_secrets_are_scrubbed_raw_only() {
        let s = Scrubber::new(["k3y9"]);
        assert_eq!(s.scrub_str("a k3y9 b"), "a [redacted] b");
        assert_eq!(s.scrub_str("a azN5OQ b"), "a azN5OQ b");
    }

    #[test]
    fn values_too_short_to_be_credentials_are_left_alone() {
        // A one-letter "secret" would otherwise turn every `t` in a response into
        // `[redacted]`, file ids included.
        let s = Scrubber::new(["t", "ab", "xyz"]);
        assert!(s.is_empty());
        assert_eq!(
            s.scrub_str("request to http://t/ab/xyz"),
            "request to http://t/ab/xyz"
        );
    }

    #[test]
    fn nothing_to_scrub_borrows() {
        let s = Scrubber::new(["a-long-secret-value"]);
        assert!(matches!(s.scrub_str("plain text"), Cow::Borrowed(_)));
        assert!(Scrubber::new(Vec::<String>::new()).is_empty());
    }
}
