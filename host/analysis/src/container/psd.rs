//! Photoshop PSD/PSB: the image-resources section (IPTC, XMP, EXIF, thumbnails).
//!
//! Threat model: section lengths are checked against the file; the resources block is read
//! once, capped by the read limit.

use crate::bytes::be32;
use crate::ctx::Ctx;
use crate::family::irb;

/// Parse a PSD file.
pub(crate) fn parse(ctx: &mut Ctx<'_>) {
    let Ok(h) = ctx.r.read(0, 30) else { return };
    if let (Some(hh), Some(w)) = (be32(&h, 14), be32(&h, 18)) {
        ctx.facts.main_dims = Some((w, hh));
    }
    let cm_len = u64::from(be32(&h, 26).unwrap_or(0));
    let res_pos = 30u64.saturating_add(cm_len);
    let Ok(l) = ctx.r.read(res_pos, 4) else {
        ctx.error("PSD: truncated before image resources");
        return;
    };
    let res_len = u64::from(be32(&l, 0).unwrap_or(0));
    match ctx.r.read(res_pos.saturating_add(4), res_len) {
        Ok(b) => irb::parse(ctx, &b, Some(res_pos.saturating_add(4))),
        Err(e) => ctx.read_error("PSD image resources", &e),
    }
}
