//! The vendor blocks added for issue 15, reached directly: the first byte picks a wrapper and
//! the rest is the block's body. Ricoh RMETA (JPEG APP5), GoPro GPMF and HP TDHD (APP6), Leaf
//! PKTS records (TIFF IFD0 0x8606), a CR3 track's sample tables (moov/trak), FlashPix APP2
//! `FPXR` segments, and the QuickTime/MP4 vendor tables (Nikon NCDT/NCTG, Pentax PENT and FLIR
//! uuid boxes in `udta`, Kodak `free` atoms; GoPro GPMF in memory).
#![no_main]

fn be_box(typ: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = u32::try_from(body.len() + 8)
        .unwrap_or(u32::MAX)
        .to_be_bytes()
        .to_vec();
    v.extend_from_slice(typ);
    v.extend_from_slice(body);
    v
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&k, body)) = data.split_first() else {
        return;
    };
    let v = match k % 9 {
        0..=2 => {
            let (marker, sig): (u8, &[u8]) = match k % 9 {
                0 => (0xe5, b"RMETA\0"),
                1 => (0xe6, b"GoPro\0"),
                _ => (0xe6, b"TDHD\x01\0\0\0"),
            };
            let body = &body[..body.len().min(65_000)];
            let mut v = vec![0xff, 0xd8, 0xff, marker];
            v.extend_from_slice(
                &u16::try_from(body.len() + sig.len() + 2)
                    .unwrap_or(0)
                    .to_be_bytes(),
            );
            v.extend_from_slice(sig);
            v.extend_from_slice(body);
            v.extend_from_slice(&[0xff, 0xd9]);
            v
        }
        3 => {
            // II TIFF, IFD0 at 8 with one entry: 0x8606 UNDEFINED, the body after the IFD.
            let n = u32::try_from(body.len() + 8).unwrap_or(0);
            let mut v = b"II*\0\x08\0\0\0\x01\0\x06\x86\x07\0".to_vec();
            v.extend_from_slice(&n.to_le_bytes());
            v.extend_from_slice(&26u32.to_le_bytes());
            v.extend_from_slice(&[0, 0, 0, 0]);
            v.extend_from_slice(b"PKTS\0\0\0\x01");
            v.extend_from_slice(body);
            v
        }
        5 => {
            // FPXR: the body cut into APP2 segments, each a 16-bit length and that many bytes.
            let mut v = vec![0xff, 0xd8];
            let mut rest = body;
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
            v
        }
        6 => {
            let mut v = be_box(b"ftyp", b"qt  \0\0\0\0qt  ");
            v.extend(be_box(b"moov", &be_box(b"udta", body)));
            v
        }
        7 => {
            let mut v = be_box(b"ftyp", b"qt  \0\0\0\0qt  ");
            let ncdt = be_box(b"NCDT", &be_box(b"NCTG", body));
            v.extend(be_box(b"moov", &be_box(b"udta", &ncdt)));
            let mut free = b"\0\0\0\x10Seri".to_vec();
            free.extend_from_slice(body);
            v.extend(be_box(b"free", &free));
            v
        }
        8 => {
            proofpix_analysis::fuzzing::parse_fpxr(body);
            proofpix_analysis::fuzzing::parse_quicktime_tables(body);
            proofpix_analysis::fuzzing::parse_gpmf(body);
            return;
        }
        _ => {
            let mut trak = be_box(b"hdlr", b"\0\0\0\0\0\0\0\0vide\0\0\0\0");
            trak.extend(be_box(b"stbl", body));
            let mut v = be_box(b"ftyp", b"crx \0\0\0\x01crx isom");
            v.extend(be_box(b"moov", &be_box(b"trak", &be_box(b"mdia", &trak))));
            v
        }
    };
    proofpix_analysis::fuzzing::check_analyze(&v, k & 0x80 != 0);
});
