//! Checks that need a secret, performed by the host.
//!
//! A webhook signing secret stays in the host's vault; the plugin hands the
//! host the message and the signature it received and gets a yes or no.

use crate::bindings::proofpix::plugin::verify as host;
pub use crate::bindings::proofpix::plugin::verify::HmacAlgorithm;

/// Whether `expected` is the HMAC of `message` under the secret config field
/// `secret_field` (constant-time comparison in the host).
pub fn hmac_matches(
    secret_field: &str,
    algorithm: HmacAlgorithm,
    message: &[u8],
    expected: &[u8],
) -> bool {
    host::hmac_matches(secret_field, algorithm, message, expected)
}

/// Whether `candidate` equals the secret config field (constant time).
pub fn secret_matches(secret_field: &str, candidate: &str) -> bool {
    host::secret_matches(secret_field, candidate)
}

/// The HMAC of `message` under the secret config field `secret_field`, to
/// sign an outbound payload (a generic webhook's `X-Signature`). The host
/// computes it; the plugin learns signatures of messages it chose, never the
/// secret. `None` when the field is not a declared secret or is not set.
pub fn hmac_sign(secret_field: &str, algorithm: HmacAlgorithm, message: &[u8]) -> Option<Vec<u8>> {
    host::hmac_sign(secret_field, algorithm, message)
}

/// Lowercase hex of `bytes`, e.g. for a signature header.
pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    host::now_ms()
}

/// Decodes lowercase or uppercase hex; `None` on any other character.
pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    s.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some(digit(*hi)? << 4 | digit(*lo)?),
            _ => None,
        })
        .collect()
}
