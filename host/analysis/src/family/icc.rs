//! ICC profile header and description tags.
//!
//! Only a device calibration profile (one that names a device manufacturer or model in its
//! `dmnd`/`dmdd` tags) is reported, as a low-risk device finding: stock profiles such as
//! "sRGB IEC61966-2.1" say nothing about a person. The tag table is bounded (at most 256 tags,
//! each checked against the profile length).

use crate::bytes::be32;
use crate::ctx::Ctx;
use crate::model::{Category, Family};

/// Decode a `desc`, `text` or `mluc` tag to text.
fn tag_text(b: &[u8]) -> Option<String> {
    let sig = b.get(0..4)?;
    match sig {
        b"desc" => {
            let n = be32(b, 8)? as usize;
            let s = b.get(12..12usize.checked_add(n)?)?;
            Some(crate::family::tiff::ascii(s))
        }
        b"text" => Some(crate::family::tiff::ascii(b.get(8..)?)),
        b"mluc" => {
            let count = be32(b, 8)?;
            if count == 0 {
                return None;
            }
            let len = be32(b, 20)? as usize;
            let off = be32(b, 24)? as usize;
            let s = b.get(off..off.checked_add(len)?)?;
            let units: Vec<u16> = s
                .chunks_exact(2)
                .map(|c| {
                    u16::from_be_bytes([
                        c.first().copied().unwrap_or(0),
                        c.get(1).copied().unwrap_or(0),
                    ])
                })
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        _ => None,
    }
}

/// Colour-space and vendor names written into stock profiles, not a device's identity.
fn is_stock(t: &str) -> bool {
    let l = t.to_ascii_lowercase();
    [
        "srgb",
        "iec",
        "rgb",
        "gray",
        "linear",
        "darktable",
        "http",
        "adobe",
        "apple",
        "generic",
        "display p3",
    ]
    .iter()
    .any(|k| l.contains(k))
}

/// Parse an ICC profile; `abs` is the file offset of `data[0]` when known.
///
/// A profile whose model (`dmdd`) or description (`desc`) names a stock colour space (sRGB,
/// ProPhoto RGB, ...) is a stock profile: its manufacturer text (`lcms generated`, `GIMP`,
/// `Canon Inc.`) names who made the profile, not a device, and nothing is reported. Otherwise
/// `dmnd` and `dmdd` are reported under ExifTool's names, `DeviceMfgDesc` and `DeviceModelDesc`,
/// each with its own text.
pub(crate) fn parse(ctx: &mut Ctx<'_>, data: &[u8], abs: Option<u64>) {
    if data.get(36..40) != Some(b"acsp") {
        ctx.error("ICC: no profile signature");
        return;
    }
    let Some(n) = be32(data, 128) else { return };
    let (mut mfg, mut model, mut desc) = (None, None, None);
    for i in 0..n.min(256) as usize {
        let p = 132usize.saturating_add(i.saturating_mul(12));
        let (Some(sig), Some(off), Some(len)) = (
            data.get(p..p.saturating_add(4)),
            be32(data, p.saturating_add(4)),
            be32(data, p.saturating_add(8)),
        ) else {
            break;
        };
        let slot = match sig {
            b"dmnd" => &mut mfg,
            b"dmdd" => &mut model,
            b"desc" => &mut desc,
            _ => continue,
        };
        if slot.is_some() {
            continue;
        }
        let (off, len) = (off as usize, len as usize);
        if let Some(t) = off
            .checked_add(len)
            .and_then(|e| data.get(off..e))
            .and_then(tag_text)
        {
            let t = t.trim().to_owned();
            if !t.is_empty() {
                *slot = Some((t, off));
            }
        }
    }
    let stock_profile = [&model, &desc]
        .iter()
        .any(|t| t.as_ref().is_some_and(|(t, _)| is_stock(t)));
    if stock_profile {
        return;
    }
    for (slot, tag, name) in [
        (mfg, "dmnd", "DeviceMfgDesc"),
        (model, "dmdd", "DeviceModelDesc"),
    ] {
        if let Some((t, off)) = slot.filter(|(t, _)| !is_stock(t)) {
            let at = abs.and_then(|a| a.checked_add(off as u64));
            ctx.text_as(
                Category::Device,
                Family::Icc,
                "ICC_Profile",
                tag,
                name,
                at,
                &t,
            );
        }
    }
}
