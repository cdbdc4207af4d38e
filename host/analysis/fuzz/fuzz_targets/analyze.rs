//! Any bytes through format detection and every container walker, range and deep mode.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let deep = data.first().is_some_and(|b| b & 1 == 1);
    proofpix_analysis::fuzzing::check_analyze(data.get(1..).unwrap_or(&[]), deep);
});
