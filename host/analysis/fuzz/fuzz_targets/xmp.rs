//! XMP packets: the RDF walker, encodings, entity and DTD refusal.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    proofpix_analysis::fuzzing::parse_xmp(data);
});
