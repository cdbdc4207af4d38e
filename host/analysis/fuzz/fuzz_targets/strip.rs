//! The lossless writer: whatever it returns must re-analyse clean.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    proofpix_analysis::fuzzing::check_strip(data);
});
