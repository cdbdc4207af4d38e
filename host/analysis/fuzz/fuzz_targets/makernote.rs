//! Maker notes: the first byte picks the camera make, so every layout table is reached.
#![no_main]
const MAKES: &[&str] = &[
    "Canon",
    "NIKON CORPORATION",
    "SONY",
    "FUJIFILM",
    "Panasonic",
    "OLYMPUS IMAGING CORP.",
    "PENTAX",
    "SAMSUNG",
    "Apple",
    "SIGMA",
    "CASIO",
    "Minolta",
    "RICOH",
    "EASTMAN KODAK COMPANY",
    "RECONYX",
    "LEICA CAMERA AG",
    "Leica Camera AG",
    "LEICA",
    "Nintendo",
    "Kodak",
    // Phase One notes are picked by their header, Sony Ericsson's by "SEMC MS".
    "Phase One",
    "Sony Ericsson",
];
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let make = MAKES[usize::from(k) % MAKES.len()];
    proofpix_analysis::fuzzing::parse_exif_with_make(make, rest);
});
