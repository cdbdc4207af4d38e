//! FLIR FFF/AFF record files: directory, camera record, GPS record, embedded images.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    proofpix_analysis::fuzzing::parse_flir(data);
});
