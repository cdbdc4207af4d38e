//! The bmff walker: fuzz input behind the container's magic bytes (the seed corpus may
//! already start with them; they are then doubled, which is harmless).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // A whole 24-byte ftyp box, unless the input already starts with one (CR3, AVIF...).
    let magic: &[u8] = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic";
    let mut v = if data.get(4..8) == Some(b"ftyp") {
        Vec::new()
    } else {
        magic.to_vec()
    };
    v.extend_from_slice(data);
    proofpix_analysis::fuzzing::check_analyze(&v, data.len() % 2 == 1);
});
