//! IPTC-IIM, Photoshop resources, ICC and CIFF heaps; the first byte picks the parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    match k % 4 {
        0 => proofpix_analysis::fuzzing::parse_iptc(rest),
        1 => proofpix_analysis::fuzzing::parse_irb(rest),
        2 => proofpix_analysis::fuzzing::parse_icc(rest),
        _ => proofpix_analysis::fuzzing::parse_ciff(rest),
    }
});
