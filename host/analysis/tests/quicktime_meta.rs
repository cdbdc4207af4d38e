//! Phone videos' location and device in QuickTime/MP4 metadata: Apple's `keys`/`ilst` under an
//! `mdta` handler (in `moov/meta`, `moov/udta/meta` and `trak/meta`), iTunes `mdir` item lists,
//! user-data text atoms (`©xyz`, `©mak`, `©mod`, `©swr`, `©aut`, `©ART`) and 3GPP `loci`.
//! Files are built here by a small box builder in the layouts of Apple's QuickTime File Format
//! and 3GPP TS 26.244; where exiftool is installed, it writes the same tags into a file in a
//! temporary directory and we must find what it reads back. Truncated and lying variants yield
//! a partial result with an error, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use proofpix_analysis::{Analyzer, Format, Options, Policy, Report};

fn run(bytes: &[u8]) -> Report {
    let v = bytes.to_vec();
    Analyzer::new(Policy::default(), Options::default().with_show_values(true)).analyze(&v)
}

fn no_panic(r: &Report) {
    assert!(
        !r.error.as_deref().unwrap_or("").contains("internal error"),
        "{:?}",
        r.error
    );
}

/// (group, name, category, value) of every finding.
fn seen(r: &Report) -> Vec<(String, String, String, String)> {
    r.findings
        .iter()
        .map(|f| {
            (
                f.source.group.clone(),
                f.source.name.clone(),
                f.category.as_str().to_owned(),
                f.value.clone(),
            )
        })
        .collect()
}

fn has(r: &Report, group: &str, name: &str, cat: &str, value: &str) -> bool {
    seen(r)
        .iter()
        .any(|(g, n, c, v)| g == group && n == name && c == cat && v == value)
}

// ---- builder ----------------------------------------------------------------------------------

fn bx(typ: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(typ);
    v.extend_from_slice(body);
    v
}

fn full(typ: &[u8; 4], body: &[u8]) -> Vec<u8> {
    bx(typ, &[&[0u8, 0, 0, 0][..], body].concat())
}

fn movie(brand: &[u8; 4], moov: &[Vec<u8>]) -> Vec<u8> {
    let mut ftyp = brand.to_vec();
    ftyp.extend_from_slice(&[0, 0, 2, 0]);
    ftyp.extend_from_slice(brand);
    let mut v = bx(b"ftyp", &ftyp);
    v.extend(bx(b"moov", &moov.concat()));
    v.extend(bx(b"mdat", &[0u8; 16]));
    v
}

fn hdlr(kind: &[u8; 4]) -> Vec<u8> {
    let mut b = vec![0u8; 4];
    b.extend_from_slice(kind);
    b.extend_from_slice(&[0u8; 12]);
    b.push(0);
    full(b"hdlr", &b)
}

/// `keys`: version/flags, entry count, then (size, 'mdta', name) entries.
fn keys(names: &[&str]) -> Vec<u8> {
    let mut b = (names.len() as u32).to_be_bytes().to_vec();
    for n in names {
        b.extend_from_slice(&((n.len() + 8) as u32).to_be_bytes());
        b.extend_from_slice(b"mdta");
        b.extend_from_slice(n.as_bytes());
    }
    full(b"keys", &b)
}

/// A `data` atom: type indicator (1 = UTF-8), locale 0, value.
fn data(typ: u32, v: &[u8]) -> Vec<u8> {
    let mut b = typ.to_be_bytes().to_vec();
    b.extend_from_slice(&[0u8; 4]);
    b.extend_from_slice(v);
    bx(b"data", &b)
}

/// `ilst` with one item per value, typed by the 1-based key index.
fn ilst_indexed(values: &[&str]) -> Vec<u8> {
    let mut b = Vec::new();
    for (i, v) in values.iter().enumerate() {
        b.extend(bx(&(i as u32 + 1).to_be_bytes(), &data(1, v.as_bytes())));
    }
    bx(b"ilst", &b)
}

const APPLE: &[(&str, &str)] = &[
    (
        "com.apple.quicktime.location.ISO6709",
        "+37.3349-122.0090+012.345/",
    ),
    ("com.apple.quicktime.make", "Apple"),
    ("com.apple.quicktime.model", "iPhone 15 Pro"),
    ("com.apple.quicktime.software", "17.1.2"),
    (
        "com.apple.quicktime.creationdate",
        "2024-05-01T10:11:12-0700",
    ),
    ("com.apple.quicktime.author", "Ann Smith"),
    ("com.apple.quicktime.location.name", "Apple Park"),
];

/// Apple's metadata: hdlr mdta, keys, ilst (the body of a `meta` box, without version/flags).
fn apple_meta_children() -> Vec<u8> {
    let names: Vec<&str> = APPLE.iter().map(|(k, _)| *k).collect();
    let values: Vec<&str> = APPLE.iter().map(|(_, v)| *v).collect();
    [hdlr(b"mdta"), keys(&names), ilst_indexed(&values)].concat()
}

fn check_apple(r: &Report, group: &str) {
    no_panic(r);
    assert_eq!(r.format, Format::QuickTime);
    let s = seen(r);
    assert!(
        has(r, group, "GPSCoordinates", "gps", "37.334900, -122.009000"),
        "{s:?}"
    );
    assert!(has(r, group, "Make", "device", "Apple"), "{s:?}");
    assert!(has(r, group, "Model", "device", "iPhone 15 Pro"), "{s:?}");
    assert!(has(r, group, "Software", "device", "17.1.2"), "{s:?}");
    assert!(has(r, group, "Author", "author", "Ann Smith"), "{s:?}");
    assert!(
        has(r, group, "LocationName", "location-text", "Apple Park"),
        "{s:?}"
    );
    assert!(
        has(
            r,
            group,
            "CreationDate",
            "timestamp",
            "2024-05-01T10:11:12-0700"
        ),
        "{s:?}"
    );
}

#[test]
fn apple_keys_in_moov_meta() {
    // Apple's moov/meta is not a full box: hdlr comes at once.
    let r = run(&movie(b"qt  ", &[bx(b"meta", &apple_meta_children())]));
    check_apple(&r, "Keys");
    assert!(r.error.is_none(), "{:?}", r.error);
}

#[test]
fn apple_keys_in_udta_meta_and_trak_meta() {
    let meta = full(b"meta", &apple_meta_children());
    let r = run(&movie(b"mp42", &[bx(b"udta", &meta)]));
    check_apple(&r, "Keys");
    let trak = bx(b"trak", &[bx(b"tkhd", &[0u8; 84]), meta].concat());
    let r = run(&movie(b"isom", &[trak]));
    check_apple(&r, "Keys");
}

/// Apple international text: 16-bit length, 16-bit language, text.
fn intl(typ: &[u8; 4], s: &str) -> Vec<u8> {
    let mut b = (s.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(&0x15c7u16.to_be_bytes());
    b.extend_from_slice(s.as_bytes());
    bx(typ, &b)
}

#[test]
fn user_data_text_atoms_android_and_apple() {
    let udta = [
        intl(b"\xa9xyz", "+48.8584+002.2945/"),
        intl(b"\xa9mak", "Google"),
        intl(b"\xa9mod", "Pixel 8"),
        intl(b"\xa9swr", "Android 14"),
        intl(b"\xa9aut", "Bob Jones"),
        intl(b"\xa9ART", "Carol White"),
        vec![0, 0, 0, 0],
    ]
    .concat();
    let r = run(&movie(b"mp42", &[bx(b"udta", &udta)]));
    no_panic(&r);
    let s = seen(&r);
    assert!(
        has(
            &r,
            "UserData",
            "GPSCoordinates",
            "gps",
            "48.858400, 2.294500"
        ),
        "{s:?}"
    );
    assert!(has(&r, "UserData", "Make", "device", "Google"), "{s:?}");
    assert!(has(&r, "UserData", "Model", "device", "Pixel 8"), "{s:?}");
    assert!(
        has(&r, "UserData", "SoftwareVersion", "device", "Android 14"),
        "{s:?}"
    );
    assert!(
        has(&r, "UserData", "Author", "author", "Bob Jones"),
        "{s:?}"
    );
    assert!(
        has(&r, "UserData", "Artist", "author", "Carol White"),
        "{s:?}"
    );
}

#[test]
fn itunes_item_list_and_3gpp_atoms() {
    let items = [
        bx(b"\xa9ART", &data(1, b"Dan Brown")),
        bx(b"\xa9xyz", &data(1, b"-33.8568+151.2153/")),
        bx(b"covr", &data(13, &[0xff, 0xd8, 0xff, 0xe0])),
    ]
    .concat();
    let meta = full(b"meta", &[hdlr(b"mdir"), bx(b"ilst", &items)].concat());
    // 3GPP loci: full box, language, name, role, longitude, latitude, altitude (16.16), body, notes.
    let mut loci = vec![0x15, 0xc7];
    loci.extend_from_slice(b"Eiffel Tower\0");
    loci.push(0);
    loci.extend_from_slice(&((2.2945f64 * 65536.0) as i32).to_be_bytes());
    loci.extend_from_slice(&((48.8584f64 * 65536.0) as i32).to_be_bytes());
    loci.extend_from_slice(&(35i32 << 16).to_be_bytes());
    loci.extend_from_slice(b"earth\0\0");
    let mut auth = vec![0x15, 0xc7];
    auth.extend_from_slice(b"Eve Adams\0");
    let udta = [meta, full(b"loci", &loci), full(b"auth", &auth)].concat();
    let r = run(&movie(b"3gp4", &[bx(b"udta", &udta)]));
    no_panic(&r);
    let s = seen(&r);
    assert!(
        has(&r, "ItemList", "Artist", "author", "Dan Brown"),
        "{s:?}"
    );
    assert!(
        has(
            &r,
            "ItemList",
            "GPSCoordinates",
            "gps",
            "-33.856800, 151.215300"
        ),
        "{s:?}"
    );
    let (lat, lon) = r
        .findings
        .iter()
        .find(|f| f.source.name == "LocationInformation" && f.category.as_str() == "gps")
        .map(|f| {
            let mut it = f.value.split(", ").map(|x| x.parse::<f64>().unwrap());
            (it.next().unwrap(), it.next().unwrap())
        })
        .expect("loci coordinates");
    assert!((lat - 48.8584).abs() < 1e-4 && (lon - 2.2945).abs() < 1e-4);
    assert!(
        has(
            &r,
            "UserData",
            "LocationInformation",
            "location-text",
            "Eiffel Tower"
        ),
        "{s:?}"
    );
    assert!(
        has(&r, "UserData", "Author", "author", "Eve Adams"),
        "{s:?}"
    );
}

#[test]
fn keys_and_items_that_lie_keep_the_rest() {
    // keys announces 9 entries but holds 2; one ilst item names key 0, one key 7, one has a
    // data box running past it; the user-data GPS after it is still found.
    let mut k = 9u32.to_be_bytes().to_vec();
    for n in ["com.apple.quicktime.make", "com.apple.quicktime.model"] {
        k.extend_from_slice(&((n.len() + 8) as u32).to_be_bytes());
        k.extend_from_slice(b"mdta");
        k.extend_from_slice(n.as_bytes());
    }
    let mut lying = 0x7000u32.to_be_bytes().to_vec();
    lying.extend_from_slice(b"data\0\0\0\x01\0\0\0\0Pixel");
    let items = [
        bx(&0u32.to_be_bytes(), &data(1, b"nothing")),
        bx(&7u32.to_be_bytes(), &data(1, b"nothing")),
        bx(&2u32.to_be_bytes(), &lying),
        bx(&1u32.to_be_bytes(), &data(1, b"Samsung")),
    ]
    .concat();
    let meta = bx(
        b"meta",
        &[hdlr(b"mdta"), full(b"keys", &k), bx(b"ilst", &items)].concat(),
    );
    let udta = bx(b"udta", &intl(b"\xa9xyz", "+37.3349-122.0090/"));
    let r = run(&movie(b"qt  ", &[meta, udta]));
    no_panic(&r);
    assert!(
        has(&r, "Keys", "Make", "device", "Samsung"),
        "{:?}",
        seen(&r)
    );
    assert!(r.findings.iter().any(|f| f.category.as_str() == "gps"));
    let e = r.error.unwrap_or_default();
    assert!(e.contains("keys") && e.contains("no key"), "{e}");
}

#[test]
fn bad_coordinates_are_an_error_not_a_finding() {
    let udta = [
        intl(b"\xa9xyz", "+97.0000-122.0090/"),
        intl(b"\xa9xyz", "garbage"),
        intl(b"\xa9mak", "Apple"),
    ]
    .concat();
    let r = run(&movie(b"qt  ", &[bx(b"udta", &udta)]));
    no_panic(&r);
    assert!(!r.findings.iter().any(|f| f.category.as_str() == "gps"));
    assert!(has(&r, "UserData", "Make", "device", "Apple"));
    assert!(r.error.unwrap().contains("ISO 6709"));
}

#[test]
fn every_truncation_of_a_phone_video_is_safe() {
    let udta = bx(
        b"udta",
        &[
            intl(b"\xa9xyz", "+48.8584+002.2945/"),
            full(b"meta", &apple_meta_children()),
        ]
        .concat(),
    );
    let f = movie(b"qt  ", &[bx(b"meta", &apple_meta_children()), udta]);
    for n in 0..f.len() {
        no_panic(&run(&f[..n]));
    }
    // Every size word set to 0xffffffff in turn.
    for p in 0..f.len().saturating_sub(8) {
        if f[p + 4..p + 8]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == 0xa9)
        {
            let mut g = f.clone();
            g[p..p + 4].copy_from_slice(&u32::MAX.to_be_bytes());
            no_panic(&run(&g));
        }
    }
}

proptest::proptest! {
    #[test]
    fn the_quicktime_metadata_parsers_take_any_bytes(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
        k in 0usize..4,
    ) {
        let f = match k {
            0 => movie(b"qt  ", &[bx(b"meta", &[hdlr(b"mdta"), body.clone()].concat())]),
            1 => movie(b"qt  ", &[bx(b"meta", &[hdlr(b"mdta"), keys(&["com.apple.quicktime.make"]), bx(b"ilst", &body)].concat())]),
            2 => movie(b"mp42", &[bx(b"udta", &body)]),
            _ => movie(b"3gp4", &[bx(b"udta", &[bx(b"\xa9xyz", &body), bx(b"loci", &body)].concat())]),
        };
        no_panic(&run(&f));
    }
}

// ---- ExifTool as the oracle --------------------------------------------------------------------

/// A minimal movie ExifTool can write into: ftyp, moov with an mvhd, mdat.
fn writable_movie() -> Vec<u8> {
    let mut mvhd = vec![0u8; 100];
    mvhd[12..16].copy_from_slice(&600u32.to_be_bytes()); // time scale
    mvhd[20..24].copy_from_slice(&0x0001_0000u32.to_be_bytes()); // rate
    mvhd[24..26].copy_from_slice(&0x0100u16.to_be_bytes()); // volume
    mvhd[96..100].copy_from_slice(&2u32.to_be_bytes()); // next track id
    movie(b"qt  ", &[bx(b"mvhd", &mvhd)])
}

#[test]
fn what_exiftool_writes_we_find() {
    if std::process::Command::new("exiftool")
        .arg("-ver")
        .output()
        .is_err()
    {
        eprintln!("exiftool not installed: skipping the ExifTool round trip");
        return;
    }
    let dir = std::env::temp_dir().join(format!("proofpix-qt-meta-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("in.mov");
    std::fs::write(&src, writable_movie()).unwrap();
    let out = dir.join("out.mov");
    let st = std::process::Command::new("exiftool")
        .args([
            "-q",
            "-Keys:GPSCoordinates=37.3349, -122.009, 12.3",
            "-Keys:Make=Apple",
            "-Keys:Model=iPhone 15 Pro",
            "-Keys:Software=17.1.2",
            "-Keys:Author=Ann Smith",
            "-UserData:GPSCoordinates=48.8584, 2.2945",
            "-UserData:Make=Google",
            "-UserData:Artist=Carol White",
            "-ItemList:Artist=Dan Brown",
            "-o",
        ])
        .arg(&out)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let bytes = std::fs::read(&out).unwrap();
    let read = std::process::Command::new("exiftool")
        .args(["-j", "-G1", "-n", "-a"])
        .arg(&out)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let v: serde_json::Value = serde_json::from_slice(&read.stdout).unwrap();
    let et = &v[0];
    let r = run(&bytes);
    no_panic(&r);
    let s = seen(&r);
    for (group, name, cat) in [
        ("Keys", "Make", "device"),
        ("Keys", "Model", "device"),
        ("Keys", "Software", "device"),
        ("Keys", "Author", "author"),
        ("UserData", "Make", "device"),
        ("UserData", "Artist", "author"),
        ("ItemList", "Artist", "author"),
    ] {
        let want = et[format!("{group}:{name}")]
            .as_str()
            .unwrap_or_else(|| panic!("ExifTool has no {group}:{name}: {et}"));
        assert!(
            has(&r, group, name, cat, want),
            "{group}:{name} {want}: {s:?}"
        );
    }
    for group in ["Keys", "UserData"] {
        let want = et[format!("{group}:GPSCoordinates")]
            .as_str()
            .unwrap_or_else(|| panic!("ExifTool has no {group}:GPSCoordinates: {et}"));
        let w: Vec<f64> = want.split(' ').map(|x| x.parse().unwrap()).collect();
        let got = r
            .findings
            .iter()
            .find(|f| f.source.group == group && f.source.name == "GPSCoordinates")
            .unwrap_or_else(|| panic!("no {group}:GPSCoordinates: {s:?}"));
        let g: Vec<f64> = got.value.split(", ").map(|x| x.parse().unwrap()).collect();
        assert!(
            (g[0] - w[0]).abs() < 1e-4 && (g[1] - w[1]).abs() < 1e-4,
            "{group}: {want} vs {}",
            got.value
        );
    }
}
