//! EXIF/TIFF IFD parsing in memory (the APP1 path), with GPS, SubIFDs and maker notes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    proofpix_analysis::fuzzing::parse_exif(data);
});
