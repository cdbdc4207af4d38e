//! Escaping for the HTML and SVG the server writes itself: the OAuth callback page, the
//! trend charts and the printable report. What reaches them can come from outside (integration
//! ids, file names a plugin listed, a platform's error text), so every such string goes through
//! [`xml_escape`], in content and attribute positions alike.

/// Escapes text for XML content and attribute values (`&`, `<`, `>`, `"`, `'`), and drops
/// characters XML 1.0 does not allow (control characters other than tab, newline and
/// carriage return), which would make the whole picture fail to parse.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::xml_escape;

    #[test]
    fn markup_quotes_and_control_characters_cannot_escape_their_position() {
        assert_eq!(
            xml_escape("<a href='x' title=\"y\">&</a>"),
            "&lt;a href=&#39;x&#39; title=&quot;y&quot;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(xml_escape("tab\tnl\ncr\r"), "tab\tnl\ncr\r");
        assert_eq!(
            xml_escape("bell\u{7}nul\u{0}\u{FFFE}\u{FFFF}end"),
            "bellnulend"
        );
        assert_eq!(xml_escape("café 東京"), "café 東京");
    }
}
