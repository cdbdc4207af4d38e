//! FLIR FFF/AFF record files: directory, camera record, GPS record, embedded images; then the
//! same bytes as a FLIR FPF file's header (behind its signature).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    proofpix_analysis::fuzzing::parse_flir(data);
    proofpix_analysis::fuzzing::parse_fpf(data);
});
