//! Any bytes through the pixel stage's entry: the header gate and bounded decode (PNG, JPEG,
//! GIF, WebP, BMP, TIFF), then the QR search, under the fuzzing budget; the oracle is
//! `proofpix_pixels::fuzzing::check`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    proofpix_pixels::fuzzing::check_analyze(data);
});
