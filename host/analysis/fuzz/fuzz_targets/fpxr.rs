//! FlashPix `FPXR` (JPEG APP2) reassembly and property sets: the input is a run of records,
//! each a 16-bit big-endian length and that many bytes (one segment's payload after
//! `FPXR\0`), parsed in memory and, behind real JPEG markers (bytes, not escaped text), through
//! the JPEG walker.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    proofpix_analysis::fuzzing::parse_fpxr(data);
    let mut v = vec![0xff, 0xd8];
    let mut rest = data;
    while let [a, b, tail @ ..] = rest {
        let n = usize::from(u16::from_be_bytes([*a, *b]))
            .min(tail.len())
            .min(65_000);
        let (one, more) = tail.split_at(n);
        v.extend_from_slice(&[0xff, 0xe2]);
        v.extend_from_slice(&u16::try_from(n + 7).unwrap_or(0).to_be_bytes());
        v.extend_from_slice(b"FPXR\0");
        v.extend_from_slice(one);
        rest = more;
    }
    v.extend_from_slice(&[0xff, 0xd9]);
    proofpix_analysis::fuzzing::check_analyze(&v, data.len() % 2 == 1);
});
