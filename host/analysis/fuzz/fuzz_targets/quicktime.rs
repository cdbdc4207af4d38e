//! The QuickTime/MP4 walker and its metadata parsers: the first byte picks where the rest goes
//! (top-level boxes, Apple's `moov/meta` after an `mdta` handler, `moov/udta`, a `trak/meta`
//! whose `keys` are fixed and whose `ilst` is the input), behind a real `ftyp` box (bytes, not
//! escaped text); then the same bytes go to the in-memory parsers (`keys`, `data`, user-data
//! text, `loci`, ISO 6709). A fifth wrapper makes the rest the one sample of a GoPro `gpmd`
//! timed-metadata track (sample tables, then GPMF read from `mdat`).
#![no_main]

fn be_box(typ: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = u32::try_from(body.len() + 8)
        .unwrap_or(u32::MAX)
        .to_be_bytes()
        .to_vec();
    v.extend_from_slice(typ);
    v.extend_from_slice(body);
    v
}

/// A `moov` with one `meta` track whose sample entry is `gpmd` and whose one sample is
/// `sample`, then the `mdat` holding it; the movie starts `at` bytes into the file.
fn gpmd_track(sample: &[u8], at: usize) -> Vec<u8> {
    let n = u32::try_from(sample.len()).unwrap_or(u32::MAX);
    let full = |typ: &[u8; 4], words: &[u32]| {
        let b: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        be_box(typ, &b)
    };
    let moov = |mdat_body: u32| {
        let mut stbl = be_box(
            b"stsd",
            &[
                &[0u8, 0, 0, 0, 0, 0, 0, 1][..],
                &be_box(b"gpmd", &[0, 0, 0, 0, 0, 0, 0, 1]),
            ]
            .concat(),
        );
        stbl.extend(full(b"stsc", &[0, 1, 1, 1, 1]));
        stbl.extend(full(b"stsz", &[0, 0, 1, n]));
        stbl.extend(full(b"stco", &[0, 1, mdat_body]));
        let mut mdia = be_box(b"hdlr", b"\0\0\0\0\0\0\0\0meta\0\0\0\0\0\0\0\0\0\0\0\0\0");
        mdia.extend(be_box(b"minf", &be_box(b"stbl", &stbl)));
        be_box(b"moov", &be_box(b"trak", &be_box(b"mdia", &mdia)))
    };
    let head = moov(0).len().saturating_add(at).saturating_add(8);
    let mut v = moov(u32::try_from(head).unwrap_or(0));
    v.extend(be_box(b"mdat", sample));
    v
}

const HDLR_MDTA: &[u8] = b"\0\0\0\x21hdlr\0\0\0\0\0\0\0\0mdta\0\0\0\0\0\0\0\0\0\0\0\0\0";

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&k, body)) = data.split_first() else {
        return;
    };
    let mut v = be_box(b"ftyp", b"qt  \0\0\0\0qt  ");
    match k % 5 {
        0 => v.extend_from_slice(body),
        1 => {
            let meta = be_box(b"meta", &[HDLR_MDTA, body].concat());
            v.extend(be_box(b"moov", &meta));
        }
        2 => v.extend(be_box(b"moov", &be_box(b"udta", body))),
        4 => v.extend(gpmd_track(body, v.len())),
        _ => {
            let mut keys = b"\0\0\0\0\0\0\0\x02".to_vec();
            for n in [
                &b"com.apple.quicktime.location.ISO6709"[..],
                b"com.apple.quicktime.make",
            ] {
                keys.extend_from_slice(&u32::try_from(n.len() + 8).unwrap_or(0).to_be_bytes());
                keys.extend_from_slice(b"mdta");
                keys.extend_from_slice(n);
            }
            let mut meta = b"\0\0\0\0".to_vec();
            meta.extend_from_slice(HDLR_MDTA);
            meta.extend(be_box(b"keys", &keys));
            meta.extend(be_box(b"ilst", body));
            v.extend(be_box(b"moov", &be_box(b"trak", &be_box(b"meta", &meta))));
        }
    }
    proofpix_analysis::fuzzing::check_analyze(&v, k & 0x80 != 0);
    proofpix_analysis::fuzzing::parse_quicktime_meta(body);
});
