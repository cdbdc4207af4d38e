//! Maker notes: the first byte picks the camera make and the second the model, so every
//! layout table is reached.
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
    // Kodak PixPro S-1 / AZ901 (Type11/12: the model decides).
    "JK Imaging, Ltd.",
];
/// Models whose maker-note layout differs from the make's default.
const MODELS: &[&str] = &[
    "",
    "KODAK PIXPRO S-1",
    "KODAK PIXPRO AZ901",
    "PIXPRO AZ251",
    "DSLR-A100",
    "ILCE-7M3",
    "Canon EOS 5D Mark III",
    "Canon EOS 450D",
];
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [k, m, rest @ ..] = data else {
        return;
    };
    let make = MAKES[usize::from(*k) % MAKES.len()];
    let model = MODELS[usize::from(*m) % MODELS.len()];
    proofpix_analysis::fuzzing::parse_exif_with_make_model(make, model, rest);
});
