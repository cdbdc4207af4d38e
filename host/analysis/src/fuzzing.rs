//! Entry points and oracles for the fuzz targets in `fuzz/` (not a stable API).
//!
//! Each `parse_*` runs one family parser on raw bytes, the way a container would hand them
//! over; each `check_*` runs the whole analyzer or the writer and asserts the invariants that
//! must hold for any input. The targets themselves stay thin (wasmtime's split between
//! generators/oracles and fuzzer glue).

use crate::ctx::Ctx;
use crate::family::tiff::{Data, Host};
use crate::model::Family;
use crate::source::Reader;
use crate::{Analyzer, Options, Policy, StripOptions};

fn with_ctx(f: impl FnOnce(&mut Ctx<'_>)) {
    let empty: Vec<u8> = Vec::new();
    let r = Reader::new(&empty);
    let o = Options::default();
    let mut ctx = Ctx::new(&r, &o);
    f(&mut ctx);
}

/// EXIF/TIFF structure in memory (as in a JPEG APP1 segment), maker notes included.
pub fn parse_exif(data: &[u8]) {
    with_ctx(|ctx| {
        let _ = crate::family::tiff::parse(ctx, Data::Mem(data, Some(0)), Host::Embedded);
    });
}

/// EXIF with a given camera make first, so maker-note layouts are reached.
pub fn parse_exif_with_make(make: &str, data: &[u8]) {
    with_ctx(|ctx| {
        ctx.facts.make = Some(make.to_owned());
        let _ = crate::family::tiff::parse(ctx, Data::Mem(data, Some(0)), Host::Embedded);
    });
}

/// EXIF with a given camera make and model first (layouts picked by the model: Kodak PixPro
/// Type11/12, the Sony DSLR-A100's Minolta block, Canon's CameraInfo tables).
pub fn parse_exif_with_make_model(make: &str, model: &str, data: &[u8]) {
    with_ctx(|ctx| {
        ctx.facts.make = Some(make.to_owned());
        ctx.facts.model = Some(model.to_owned());
        let _ = crate::family::tiff::parse(ctx, Data::Mem(data, Some(0)), Host::Embedded);
    });
}

/// A FLIR FFF/AFF record file (as assembled from JPEG APP1 "FLIR" segments).
pub fn parse_flir(data: &[u8]) {
    with_ctx(|ctx| crate::container::jpeg::flir(ctx, data, Some(0)));
}

/// A FLIR FPF file: `data` behind the 24-byte `FPF Public Image Format` signature, read by the
/// FPF header reader through a reader over those bytes (as the container dispatch would).
pub fn parse_fpf(data: &[u8]) {
    let mut v = b"FPF Public Image Format\0".to_vec();
    v.extend_from_slice(data);
    let r = Reader::new(&v);
    let o = Options::default();
    let mut ctx = Ctx::new(&r, &o);
    crate::container::raw::parse_fpf(&mut ctx);
}

/// FlashPix APP2 `FPXR` segments: `data` is a run of records, each a 16-bit big-endian length
/// and that many bytes (what follows `FPXR\0` in one segment), reassembled as in a JPEG walk.
pub fn parse_fpxr(data: &[u8]) {
    with_ctx(|ctx| {
        let mut f = crate::family::fpxr::Fpxr::default();
        let mut rest = data;
        while let [a, b, tail @ ..] = rest {
            let n = usize::from(u16::from_be_bytes([*a, *b])).min(tail.len());
            let (one, more) = tail.split_at(n);
            let mut seg = b"FPXR\0".to_vec();
            seg.extend_from_slice(one);
            f.segment(ctx, &seg);
            rest = more;
        }
        f.finish(ctx);
    });
}

/// The QuickTime/MP4 vendor tables, each fed the same bytes: Nikon `NCTG` records, Pentax
/// `PENT` binary data, a FLIR user-data `uuid` box (serial and GPS) and Kodak `free` atoms.
pub fn parse_quicktime_tables(data: &[u8]) {
    with_ctx(|ctx| {
        use crate::container::qt;
        qt::nctg(ctx, data, Some(0));
        qt::pent_data(ctx, data, Some(0), data.len() as u64);
        qt::flir_table(ctx, data, Some(0));
        for uuid in [qt::UUID_FLIR_SERIAL, qt::UUID_FLIR_GPS] {
            let mut b = uuid.to_vec();
            b.extend_from_slice(data);
            qt::flir_table(ctx, &b, Some(0));
        }
        qt::kodak_free_data(ctx, data, Some(0));
    });
}

/// The QuickTime metadata parsers in memory, each fed the same bytes: a `keys` box, a `data`
/// atom's value, every user-data text atom kind (international text, 3GPP text, plain
/// strings, `loci`) and the ISO 6709 point parser.
pub fn parse_quicktime_meta(data: &[u8]) {
    with_ctx(|ctx| {
        use crate::container::qt;
        let _ = qt::parse_keys(ctx, data);
        let _ = qt::data_value(data);
        for typ in [b"\xa9xyz", b"auth", b"slno", b"modl", b"loci"] {
            qt::udta_text_data(ctx, typ, data, Some(0));
        }
        let _ = qt::iso6709(&String::from_utf8_lossy(data));
    });
}

/// GoPro GPMF records in memory (JPEG APP6 after `GoPro\0`, a `udta` `GPMF` box, one sample
/// of a `gpmd` track): the device records and every GPS record kind.
pub fn parse_gpmf(data: &[u8]) {
    with_ctx(|ctx| crate::family::gpmf::Gpmf::new("GoPro", true).read(ctx, data, Some(0)));
}

/// An XMP packet.
pub fn parse_xmp(data: &[u8]) {
    with_ctx(|ctx| crate::family::xmp::parse(ctx, data, None));
}

/// IPTC-IIM datasets.
pub fn parse_iptc(data: &[u8]) {
    with_ctx(|ctx| crate::family::iptc::parse(ctx, data, None, "IPTC"));
}

/// Photoshop image resources (and the IPTC, EXIF, XMP, ICC inside them).
pub fn parse_irb(data: &[u8]) {
    with_ctx(|ctx| crate::family::irb::parse(ctx, data, None));
}

/// An ICC profile.
pub fn parse_icc(data: &[u8]) {
    with_ctx(|ctx| crate::family::icc::parse(ctx, data, None));
}

/// A CIFF heap in memory (Canon APP0 / CRW).
pub fn parse_ciff(data: &[u8]) {
    with_ctx(|ctx| crate::container::crw::parse_mem(ctx, data, None, "CIFF"));
}

/// Oracle for the whole analyzer: no internal error (a caught panic), findings well-formed,
/// needs empty for an in-memory source.
///
/// # Panics
/// When an invariant fails; that is the fuzzer's signal.
#[allow(clippy::panic)]
pub fn check_analyze(data: &[u8], deep: bool) {
    let a = Analyzer::new(Policy::default(), Options::default().with_deep(deep));
    let v = data.to_vec();
    let r = a.analyze(&v);
    if r.error
        .as_deref()
        .is_some_and(|e| e.contains("internal error"))
    {
        panic!("analyzer panicked internally");
    }
    if !r.needs.is_empty() {
        panic!("in-memory source reported missing ranges");
    }
    for f in &r.findings {
        if f.code.is_empty() || !f.code.starts_with(f.category.code_prefix()) {
            panic!("malformed finding code {}", f.code);
        }
    }
    let _ = r.to_json("fuzz");
    let _ = r.summary();
}

/// Oracle for the writer: a copy it returns re-analyses with nothing but ICC left.
///
/// # Panics
/// When the invariant fails.
#[allow(clippy::panic)]
pub fn check_strip(data: &[u8]) {
    let v = data.to_vec();
    match crate::strip(&v, &StripOptions::default()) {
        Ok(s) => {
            let r = Analyzer::new(Policy::default(), Options::default().with_deep(true))
                .analyze(&s.bytes);
            if r.findings
                .iter()
                .any(|f| f.source.family != Family::Icc && !crate::strip::kept_image(f, r.format))
            {
                panic!("stripped copy still has findings");
            }
        }
        Err(e) => {
            if e.to_string().contains("internal error") {
                panic!("strip panicked internally");
            }
        }
    }
}
