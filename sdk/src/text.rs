//! Cutting text to a platform's limit without splitting a character.
//!
//! Every platform caps the text a plugin writes: Slack a header at 150 characters, SharePoint a
//! single line of text at 255, Google Drive a property's key and value at 124 bytes of UTF-8,
//! Dropbox a property value at 1024 bytes. Some count characters (Unicode scalar values), some
//! bytes. Both functions here cut on a character boundary, end in [`ELLIPSIS`] when they cut,
//! and never return more than the limit, so the reader sees that something was left out and the
//! platform never refuses the value for its length.
//!
//! The text being cut comes from scanned files (names, summaries, finding values): anyone who
//! can upload a file chooses it. Nothing here interprets it; escaping for a markup (Slack's
//! `mrkdwn`, Teams' markdown) is the caller's job, after cutting, so an escape sequence is never
//! cut in half.
//!
//! ```
//! use proofpix_sdk::text::{truncate_bytes, truncate_chars};
//!
//! assert_eq!(truncate_chars("Ångström", 5), "Ångs…");
//! assert_eq!(truncate_chars("short", 10), "short");
//! // "é" is two bytes: six bytes hold the ellipsis (three) and one "é", not a half.
//! assert_eq!(truncate_bytes("éééé", 6), "é…");
//! ```

/// What ends a cut text: `…` (U+2026), one character, three bytes of UTF-8.
pub const ELLIPSIS: char = '…';

/// `s` cut to at most `max` characters, ending in [`ELLIPSIS`] when cut.
///
/// A text of `max` characters or fewer comes back unchanged. A cut one keeps its first
/// `max - 1` characters and the ellipsis, so it is exactly `max` characters long. With `max` 0
/// the result is empty.
///
/// # Examples
///
/// ```
/// use proofpix_sdk::text::truncate_chars;
///
/// assert_eq!(truncate_chars("GPS 52.37,4.90", 8), "GPS 52.…");
/// assert_eq!(truncate_chars("日本語", 2), "日…");
/// ```
pub fn truncate_chars(s: &str, max: usize) -> String {
    // The byte offset of the character after the first `max`: none means it all fits.
    let Some((cut_at, _)) = s.char_indices().nth(max) else {
        return s.to_string();
    };
    if max == 0 {
        return String::new();
    }
    // `cut_at` is past `max` characters; keep `max - 1` of them.
    let keep = s
        .get(..cut_at)
        .and_then(|head| head.char_indices().next_back())
        .map_or(0, |(last, _)| last);
    let mut out = String::with_capacity(keep + ELLIPSIS.len_utf8());
    out.push_str(s.get(..keep).unwrap_or_default());
    out.push(ELLIPSIS);
    out
}

/// `s` cut to at most `max` bytes of UTF-8 on a character boundary, ending in [`ELLIPSIS`] when
/// cut.
///
/// A text of `max` bytes or fewer comes back unchanged. A cut one keeps as many whole characters
/// as fit in `max` minus the ellipsis's three bytes. When `max` is smaller than the ellipsis
/// itself, the result is empty: a limit is never exceeded.
///
/// # Examples
///
/// ```
/// use proofpix_sdk::text::truncate_bytes;
///
/// let cut = truncate_bytes(&"Ångström ".repeat(200), 1024);
/// assert!(cut.len() <= 1024 && cut.ends_with('…'));
/// assert_eq!(truncate_bytes("abc", 2), "");
/// ```
pub fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let Some(budget) = max.checked_sub(ELLIPSIS.len_utf8()) else {
        return String::new();
    };
    let mut end = budget.min(s.len());
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + ELLIPSIS.len_utf8());
    out.push_str(s.get(..end).unwrap_or_default());
    out.push(ELLIPSIS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text at or under the limit is never touched, whatever it holds.
    #[test]
    fn text_within_the_limit_comes_back_unchanged() {
        for s in ["", "a", "ééé", "日本語", "a\u{0}b\u{1b}[31m", "👩‍👩‍👧"] {
            assert_eq!(truncate_chars(s, s.chars().count()), s, "{s:?}");
            assert_eq!(truncate_bytes(s, s.len()), s, "{s:?}");
        }
    }

    /// The cut lands on a character boundary for one-, two-, three- and four-byte characters,
    /// at every limit: no half character, and never over the limit.
    #[test]
    fn a_cut_never_splits_a_character_or_exceeds_the_limit() {
        let hostile = "aé日😀\u{0}\u{7}\r\n\u{202e}é日😀a".repeat(3);
        for max in 0..hostile.len() + 2 {
            let b = truncate_bytes(&hostile, max);
            assert!(b.len() <= max, "bytes max {max}: {b:?}");
            if b.len() < hostile.len() && max >= 3 {
                assert!(b.ends_with(ELLIPSIS), "bytes max {max}: {b:?}");
                assert!(
                    hostile.starts_with(b.trim_end_matches(ELLIPSIS)),
                    "max {max}"
                );
            }
            let c = truncate_chars(&hostile, max);
            assert!(c.chars().count() <= max, "chars max {max}: {c:?}");
            if c != hostile && max > 0 {
                assert_eq!(c.chars().count(), max, "chars max {max}: {c:?}");
                assert!(c.ends_with(ELLIPSIS), "chars max {max}: {c:?}");
                assert!(
                    hostile.starts_with(c.trim_end_matches(ELLIPSIS)),
                    "max {max}"
                );
            }
        }
    }

    /// The limits the first-party plugins write under, with the multi-byte character straddling
    /// the boundary.
    #[test]
    fn multi_byte_characters_at_the_boundary_are_dropped_whole() {
        // 121 ASCII bytes then "é" (bytes 121-122): 124 bytes hold 121 + the ellipsis.
        let s = format!("{}é and more", "x".repeat(121));
        assert_eq!(truncate_bytes(&s, 124), format!("{}…", "x".repeat(121)));
        // 120 ASCII bytes then "é": the "é" ends at byte 122 > 121, so it goes too.
        let s = format!("{}é and more", "x".repeat(120));
        assert_eq!(truncate_bytes(&s, 124), format!("{}…", "x".repeat(120)));
        assert_eq!(
            truncate_bytes(&"é".repeat(40), 27),
            format!("{}…", "é".repeat(12))
        );
        assert_eq!(truncate_chars("ééé", 2), "é…");
        assert_eq!(truncate_chars("😀😀😀", 2), "😀…");
    }

    /// Control characters are text like any other: counted, kept, never a reason to panic.
    #[test]
    fn control_characters_are_counted_like_any_character() {
        assert_eq!(truncate_chars("\u{0}\u{1}\u{2}\u{3}", 3), "\u{0}\u{1}…");
        assert_eq!(truncate_bytes("\r\n\r\n\r\n", 5), "\r\n…");
    }

    /// A limit smaller than the ellipsis gives an empty text rather than one over the limit.
    #[test]
    fn a_limit_too_small_for_the_ellipsis_gives_nothing() {
        assert_eq!(truncate_chars("abc", 0), "");
        assert_eq!(truncate_chars("abc", 1), "…");
        assert_eq!(truncate_bytes("abcd", 2), "");
        assert_eq!(truncate_bytes("abcd", 3), "…");
        assert_eq!(truncate_bytes("", 0), "");
    }
}
