//! IPTC-IIM datasets (record 2), as stored in Photoshop resource 0x0404, TIFF tag 0x83BB, PNG
//! raw profiles and JPEG 2000 boxes.
//!
//! Threat model: a dataset's length comes from the file, including the extended-length form
//! (up to 4 bytes of length). Every length is checked against the bytes present; a bad marker
//! ends the walk with an error and keeps what was read. Nothing is allocated beyond the input.

use crate::ctx::Ctx;
use crate::model::Family;

/// Record-2 datasets we decode: number → ExifTool name.
const DATASETS: &[(u8, &str)] = &[
    (5, "ObjectName"),
    (25, "Keywords"),
    (40, "SpecialInstructions"),
    (55, "DateCreated"),
    (62, "DigitalCreationDate"),
    (80, "By-line"),
    (85, "By-lineTitle"),
    (90, "City"),
    (92, "Sub-location"),
    (95, "Province-State"),
    (101, "Country-PrimaryLocationName"),
    (103, "OriginalTransmissionReference"),
    (105, "Headline"),
    (116, "CopyrightNotice"),
    (118, "Contact"),
    (120, "Caption-Abstract"),
    (122, "Writer-Editor"),
];

/// Decode IIM text: UTF-8 when valid, else Latin-1.
fn text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => b.iter().map(|c| char::from(*c)).collect(),
    }
}

/// Parse IIM data; `abs` is the file offset of `data[0]` when known.
pub(crate) fn parse(ctx: &mut Ctx<'_>, data: &[u8], abs: Option<u64>, group: &str) {
    let mut pos = 0usize;
    let mut n = 0u32;
    while pos < data.len() {
        n = n.saturating_add(1);
        if n > 100_000 || (n.is_multiple_of(1024) && !ctx.alive()) {
            break;
        }
        let Some(&marker) = data.get(pos) else { break };
        if marker != 0x1c {
            // Padding at the end of a block is normal; anything else is an error.
            if data.get(pos..).is_some_and(|r| r.iter().any(|b| *b != 0)) && n == 1 {
                ctx.error("IPTC: no dataset marker");
            }
            break;
        }
        let (Some(&rec), Some(&ds), Some(l0), Some(l1)) = (
            data.get(pos.saturating_add(1)),
            data.get(pos.saturating_add(2)),
            data.get(pos.saturating_add(3)),
            data.get(pos.saturating_add(4)),
        ) else {
            ctx.error("IPTC: truncated dataset header");
            break;
        };
        let mut len = usize::from(u16::from_be_bytes([*l0, *l1]));
        let mut start = pos.saturating_add(5);
        if len & 0x8000 != 0 {
            let nb = len & 0x7fff;
            if nb > 4 {
                ctx.error("IPTC: bad extended length");
                break;
            }
            let Some(lb) = data.get(start..start.saturating_add(nb)) else {
                break;
            };
            len = lb
                .iter()
                .fold(0usize, |a, b| a.wrapping_shl(8) | usize::from(*b));
            start = start.saturating_add(nb);
        }
        let Some(end) = start.checked_add(len) else {
            break;
        };
        let Some(val) = data.get(start..end) else {
            ctx.error("IPTC: dataset runs past its block");
            break;
        };
        if rec == 2
            && let Some((_, name)) = DATASETS.iter().find(|(d, _)| *d == ds)
        {
            let off = abs.and_then(|a| a.checked_add(start as u64));
            ctx.text(
                Family::Iptc,
                group,
                &format!("2:{ds}"),
                name,
                off,
                &text(val),
            );
        }
        pos = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;
    use crate::source::Reader;

    #[test]
    fn a_by_line_and_a_city_are_read() {
        let mut d = vec![0x1c, 2, 80, 0, 3];
        d.extend_from_slice(b"Ann");
        d.extend_from_slice(&[0x1c, 2, 90, 0, 5]);
        d.extend_from_slice(b"Paris");
        let src: Vec<u8> = Vec::new();
        let r = Reader::new(&src);
        let o = Options::default();
        let mut ctx = Ctx::new(&r, &o);
        parse(&mut ctx, &d, None, "IPTC");
        let names: Vec<_> = ctx.items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["By-line", "City"]);
    }
}
