//! The tiff walker: fuzz input behind the container's magic bytes (the seed corpus may
//! already start with them; they are then doubled, which is harmless).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let magic: &[u8] = b"II*\0";
    let mut v = if data.starts_with(magic) {
        Vec::new()
    } else {
        magic.to_vec()
    };
    v.extend_from_slice(data);
    proofpix_analysis::fuzzing::check_analyze(&v, data.len() % 2 == 1);
});
