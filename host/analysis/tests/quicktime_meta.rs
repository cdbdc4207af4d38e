//! Phone videos' location and device in QuickTime/MP4 metadata: Apple's `keys`/`ilst` under an
//! `mdta` handler (in `moov/meta`, `moov/udta/meta` and `trak/meta`), iTunes `mdir` item lists,
//! user-data text atoms (`©xyz`, `©mak`, `©mod`, `©swr`, `©aut`, `©ART`) and 3GPP `loci`.
//! Files are built here by a small box builder in the layouts of Apple's QuickTime File Format
//! and 3GPP TS 26.244; where exiftool is installed, it writes the same tags into a file in a
//! temporary directory and we must find what it reads back. Truncated and lying variants yield
//! a partial result with an error, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::no_panic;

use proofpix_analysis::{Analyzer, Format, Options, Policy, Report};

fn run(bytes: &[u8]) -> Report {
    let v = bytes.to_vec();
    Analyzer::new(Policy::default(), Options::default().with_show_values(true)).analyze(&v)
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
    // ExifTool files a track's tags under the track (`Track1`), whatever box holds them.
    let trak = bx(b"trak", &[bx(b"tkhd", &[0u8; 84]), meta].concat());
    let r = run(&movie(b"isom", &[trak]));
    check_apple(&r, "Track1");
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

// ---- keys in every namespace, numeric values, tracks (issue 15, round 2) ------------------------

/// `keys` with a namespace per entry: `mdta` keys are reverse-DNS strings, `udta` and `mdir`
/// keys Mac-encoded four-character codes (`©` is 0xa9).
fn keys_ns(entries: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
    let mut b = (entries.len() as u32).to_be_bytes().to_vec();
    for (ns, k) in entries {
        b.extend_from_slice(&((k.len() + 8) as u32).to_be_bytes());
        b.extend_from_slice(&ns[..]);
        b.extend_from_slice(k);
    }
    full(b"keys", &b)
}

/// `ilst` with one typed `data` item per value, by 1-based key index.
fn ilst_typed(values: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (i, (t, v)) in values.iter().enumerate() {
        b.extend(bx(&(i as u32 + 1).to_be_bytes(), &data(*t, v)));
    }
    bx(b"ilst", &b)
}

/// ExifTool's `-j -G1 -n` reading of `bytes` (written to a temporary file), or `None` without
/// exiftool. `config` is an ExifTool config file's text, for tags it must be told of.
fn exiftool_reads(
    tag: &str,
    bytes: &[u8],
    config: Option<&str>,
    writes: &[&str],
) -> Option<(serde_json::Value, Vec<u8>)> {
    if std::process::Command::new("exiftool")
        .arg("-ver")
        .output()
        .is_err()
    {
        eprintln!("exiftool not installed: skipping the ExifTool comparison");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("qt_proofpix_{tag}_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("in.mov");
    std::fs::write(&src, bytes).unwrap();
    let mut cfg_args = Vec::new();
    if let Some(c) = config {
        let cfg = dir.join("config.pl");
        std::fs::write(&cfg, c).unwrap();
        cfg_args = vec!["-config".to_owned(), cfg.display().to_string()];
    }
    let mut file = src.clone();
    if !writes.is_empty() {
        file = dir.join("out.mov");
        let st = std::process::Command::new("exiftool")
            .args(&cfg_args)
            .arg("-q")
            .args(writes)
            .arg("-o")
            .arg(&file)
            .arg(&src)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
    }
    let out = std::process::Command::new("exiftool")
        .args(["-j", "-G1", "-n", "-a", "-u"])
        .arg(&file)
        .output()
        .unwrap();
    let written = std::fs::read(&file).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Some((v[0].clone(), written))
}

fn value_of<'a>(r: &'a Report, group: &str, name: &str) -> Option<&'a str> {
    r.findings
        .iter()
        .find(|f| f.source.group == group && f.source.name == name)
        .map(|f| f.value.as_str())
}

/// Keys whose namespace is not `mdta`: Mac-encoded codes, looked up as ExifTool's ProcessKeys
/// does (Keys table, then the item-list and user-data tables; a code stored backwards is
/// reversed; a code no table knows has no name and is no finding).
fn mac_keys_movie() -> Vec<u8> {
    let entries: [(&[u8; 4], &[u8]); 8] = [
        (b"udta", b"\xa9xyz"),
        (b"udta", b"\xa9mak"),
        (b"mdir", b"\xa9ART"),
        (b"udta", b"tua\xa9"),
        (b"udta", b"slno"),
        (b"mdta", b"com.apple.quicktime.\xa9swr"),
        (b"udta", b"\xa9zzz"),
        (b"udta", b"mod\xa9"),
    ];
    let values: Vec<(u32, Vec<u8>)> = [
        "+48.8584+002.2945/",
        "Canon",
        "Dan Brown",
        "Ann Smith",
        "SN-0042",
        "v1.2",
        "zz",
        "EOS R5",
    ]
    .iter()
    .map(|v| (1, v.as_bytes().to_vec()))
    .collect();
    let meta = bx(
        b"meta",
        &[hdlr(b"mdta"), keys_ns(&entries), ilst_typed(&values)].concat(),
    );
    let mut mvhd = vec![0u8; 100];
    mvhd[12..16].copy_from_slice(&600u32.to_be_bytes());
    mvhd[20..24].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    mvhd[24..26].copy_from_slice(&0x0100u16.to_be_bytes());
    mvhd[96..100].copy_from_slice(&2u32.to_be_bytes());
    movie(b"qt  ", &[bx(b"mvhd", &mvhd), meta])
}

#[test]
fn keys_with_mac_encoded_codes_are_named_as_exiftool_names_them() {
    let f = mac_keys_movie();
    let r = run(&f);
    no_panic(&r);
    let s = seen(&r);
    assert!(
        has(&r, "Keys", "GPSCoordinates", "gps", "48.858400, 2.294500"),
        "{s:?}"
    );
    assert!(has(&r, "Keys", "Make", "device", "Canon"), "{s:?}");
    assert!(has(&r, "Keys", "Artist", "author", "Dan Brown"), "{s:?}");
    assert!(has(&r, "Keys", "Author", "author", "Ann Smith"), "{s:?}");
    assert!(
        has(&r, "Keys", "SerialNumber", "serial", "SN-0042"),
        "{s:?}"
    );
    assert!(
        has(&r, "Keys", "SoftwareVersion", "device", "v1.2"),
        "{s:?}"
    );
    // `mod©` reversed is `©dom`, which no table holds: no Model, as in ExifTool.
    assert!(value_of(&r, "Keys", "Model").is_none(), "{s:?}");
    assert!(
        !s.iter().any(|(_, _, _, v)| v == "zz" || v == "EOS R5"),
        "{s:?}"
    );
    // The finding's tag is the code as written, `©` decoded.
    let gps = r
        .findings
        .iter()
        .find(|f| f.source.name == "GPSCoordinates")
        .unwrap();
    assert_eq!(gps.source.tag, "\u{a9}xyz");
    assert!(r.error.is_none(), "{:?}", r.error);

    let Some((et, _)) = exiftool_reads("mackeys", &f, None, &[]) else {
        return;
    };
    for name in [
        "Make",
        "Artist",
        "Author",
        "SerialNumber",
        "SoftwareVersion",
    ] {
        let want = et[format!("Keys:{name}")]
            .as_str()
            .unwrap_or_else(|| panic!("ExifTool has no Keys:{name}: {et}"));
        assert_eq!(value_of(&r, "Keys", name), Some(want), "Keys:{name}");
    }
    assert_eq!(
        et["Keys:GPSCoordinates"].as_str(),
        Some("48.8584 2.2945"),
        "{et}"
    );
    assert!(et.get("Keys:Model").is_none(), "{et}");
}

/// (key, type indicator, value bytes, our reading). Every name is a privacy tag, so each
/// decoded value is a finding.
fn numeric_items() -> Vec<(&'static str, u32, Vec<u8>, Option<&'static str>)> {
    vec![
        ("SerialNumber", 21, vec![0xff], Some("-1")),
        (
            "LensSerialNumber",
            21,
            (-2i16).to_be_bytes().to_vec(),
            Some("-2"),
        ),
        (
            "BodySerialNumber",
            21,
            (-3i32).to_be_bytes().to_vec(),
            Some("-3"),
        ),
        (
            "CameraSerialNumber",
            21,
            (-4i64).to_be_bytes().to_vec(),
            Some("-4"),
        ),
        (
            "SensorSerialNumber",
            22,
            5u64.to_be_bytes().to_vec(),
            Some("5"),
        ),
        (
            "FlashSerialNumber",
            23,
            0.1f32.to_be_bytes().to_vec(),
            Some("0.100000001490116"),
        ),
        (
            "ExtenderSerialNumber",
            24,
            (1.0f64 / 3.0).to_be_bytes().to_vec(),
            Some("0.333333333333333"),
        ),
        (
            "FilterSerialNumber",
            0,
            300u16.to_be_bytes().to_vec(),
            Some("300"),
        ),
        ("ScannerSerialNumber", 22, vec![200], Some("200")),
        (
            "InternalSerialNumber",
            24,
            1e20f64.to_be_bytes().to_vec(),
            Some("1e+20"),
        ),
        // Apple's fixed-size integers: ExifTool 12.57 shows these as binary data.
        ("ImageDescription", 65, vec![0xfe], Some("-2")),
        (
            "UserComment",
            66,
            (-7i16).to_be_bytes().to_vec(),
            Some("-7"),
        ),
        (
            "Description",
            67,
            (-8i32).to_be_bytes().to_vec(),
            Some("-8"),
        ),
        ("Comment", 74, (-9i64).to_be_bytes().to_vec(), Some("-9")),
        ("Keywords", 75, vec![10, 20], Some("10 20")),
        ("Headline", 76, 11u16.to_be_bytes().to_vec(), Some("11")),
        (
            "Title",
            77,
            u32::MAX.to_be_bytes().to_vec(),
            Some("4294967295"),
        ),
        ("ObjectName", 78, 13u64.to_be_bytes().to_vec(), Some("13")),
        // A 3-byte signed integer and a JPEG are not numbers.
        ("SpecialInstructions", 21, vec![1, 2, 3], None),
        ("Caption-Abstract", 13, vec![0xff, 0xd8, 0xff], None),
    ]
}

fn numeric_movie() -> Vec<u8> {
    let items = numeric_items();
    let entries: Vec<(&[u8; 4], &[u8])> = items
        .iter()
        .map(|(k, ..)| (b"mdta", k.as_bytes()))
        .collect();
    let values: Vec<(u32, Vec<u8>)> = items.iter().map(|(_, t, v, _)| (*t, v.clone())).collect();
    let meta = bx(
        b"meta",
        &[hdlr(b"mdta"), keys_ns(&entries), ilst_typed(&values)].concat(),
    );
    let mut mvhd = vec![0u8; 100];
    mvhd[12..16].copy_from_slice(&600u32.to_be_bytes());
    mvhd[96..100].copy_from_slice(&2u32.to_be_bytes());
    movie(b"qt  ", &[bx(b"mvhd", &mvhd), meta])
}

#[test]
fn numeric_data_values_are_decoded() {
    let f = numeric_movie();
    let r = run(&f);
    no_panic(&r);
    let s = seen(&r);
    for (name, _, _, want) in numeric_items() {
        assert_eq!(value_of(&r, "Keys", name), want, "Keys:{name}: {s:?}");
    }
    let Some((et, _)) = exiftool_reads("numbers", &f, None, &[]) else {
        return;
    };
    for (name, typ, _, want) in numeric_items() {
        let e = &et[format!("Keys:{name}")];
        match (typ, want) {
            // ExifTool decodes these: the same number.
            (0 | 21..=24, Some(w)) => {
                let e = e
                    .as_f64()
                    .unwrap_or_else(|| panic!("ExifTool Keys:{name}: {e}"));
                let w: f64 = w.parse().unwrap();
                assert!((e - w).abs() <= w.abs() * 1e-14, "Keys:{name}: {e} vs {w}");
            }
            // ExifTool shows these as binary data; we decode them.
            _ => assert!(
                e.as_str().is_some_and(|x| x.starts_with("(Binary data")),
                "Keys:{name}: {e}"
            ),
        }
    }
}

#[test]
fn numeric_keys_exiftool_writes_we_read() {
    let config = r"%Image::ExifTool::UserDefined = (
    'Image::ExifTool::QuickTime::Keys' => {
        'SerialNumber' => { Writable => 'int32u' },
        'LensSerialNumber' => { Writable => 'int16s' },
        'BodySerialNumber' => { Writable => 'float' },
        'CameraSerialNumber' => { Writable => 'double' },
        'InternalSerialNumber' => { Writable => 'int8u' },
    },
);
1;
";
    let Some((et, bytes)) = exiftool_reads(
        "numwrite",
        &writable_movie(),
        Some(config),
        &[
            "-Keys:SerialNumber=4000000000",
            "-Keys:LensSerialNumber=-77",
            "-Keys:BodySerialNumber=0.1",
            "-Keys:CameraSerialNumber=1234567.25",
            "-Keys:InternalSerialNumber=200",
        ],
    ) else {
        return;
    };
    let r = run(&bytes);
    no_panic(&r);
    let s = seen(&r);
    for (name, want) in [
        ("SerialNumber", "4000000000"),
        ("LensSerialNumber", "-77"),
        ("BodySerialNumber", "0.100000001490116"),
        ("CameraSerialNumber", "1234567.25"),
        ("InternalSerialNumber", "200"),
    ] {
        assert!(has(&r, "Keys", name, "serial", want), "Keys:{name}: {s:?}");
        let e = et[format!("Keys:{name}")]
            .as_f64()
            .unwrap_or_else(|| panic!("ExifTool Keys:{name}: {et}"));
        let w: f64 = want.parse().unwrap();
        assert!(
            (e - w).abs() <= w.abs() * 1e-14,
            "Keys:{name}: ExifTool {e}, ours {w}"
        );
    }
}

/// Three tracks: Apple's plain `trak/meta` (an `mdta` key and a `udta`-namespace code), a
/// full `trak/udta/meta`, and a track's user-data text atom; and the movie's own user data.
fn tracks_movie() -> Vec<u8> {
    let tkhd = bx(b"tkhd", &[0u8; 84]);
    let meta1 = bx(
        b"meta",
        &[
            hdlr(b"mdta"),
            keys_ns(&[
                (b"mdta", b"com.apple.quicktime.make"),
                (b"mdta", b"com.apple.quicktime.location.ISO6709"),
                (b"udta", b"\xa9aut"),
            ]),
            ilst_typed(&[
                (1, b"TrackMake".to_vec()),
                (1, b"+10.5+020.25/".to_vec()),
                (1, b"Ann Track".to_vec()),
            ]),
        ]
        .concat(),
    );
    let trak1 = bx(b"trak", &[tkhd.clone(), meta1].concat());
    let meta2 = full(
        b"meta",
        &[
            hdlr(b"mdta"),
            keys(&["com.apple.quicktime.model"]),
            ilst_indexed(&["TrackModel"]),
        ]
        .concat(),
    );
    let trak2 = bx(b"trak", &[tkhd.clone(), bx(b"udta", &meta2)].concat());
    let trak3 = bx(
        b"trak",
        &[tkhd, bx(b"udta", &intl(b"\xa9mak", "Nikon"))].concat(),
    );
    let mut mvhd = vec![0u8; 100];
    mvhd[12..16].copy_from_slice(&600u32.to_be_bytes());
    mvhd[96..100].copy_from_slice(&4u32.to_be_bytes());
    movie(
        b"qt  ",
        &[
            bx(b"mvhd", &mvhd),
            trak1,
            trak2,
            trak3,
            bx(b"udta", &intl(b"\xa9mak", "MovieMake")),
        ],
    )
}

#[test]
fn track_metadata_is_grouped_by_track_as_exiftool_groups_it() {
    let f = tracks_movie();
    let r = run(&f);
    no_panic(&r);
    let s = seen(&r);
    assert!(has(&r, "Track1", "Make", "device", "TrackMake"), "{s:?}");
    assert!(
        has(
            &r,
            "Track1",
            "GPSCoordinates",
            "gps",
            "10.500000, 20.250000"
        ),
        "{s:?}"
    );
    assert!(has(&r, "Track1", "Author", "author", "Ann Track"), "{s:?}");
    assert!(has(&r, "Track2", "Model", "device", "TrackModel"), "{s:?}");
    // A track's user-data text: ExifTool files it as Track3:Track3Make and does not decode the
    // international text; we read it (a true finding ExifTool's scorer does not count).
    assert!(has(&r, "Track3", "Make", "device", "Nikon"), "{s:?}");
    assert!(has(&r, "UserData", "Make", "device", "MovieMake"), "{s:?}");
    assert!(!s.iter().any(|(g, ..)| g == "Keys"), "{s:?}");
    assert!(r.error.is_none(), "{:?}", r.error);

    let Some((et, _)) = exiftool_reads("tracks", &f, None, &[]) else {
        return;
    };
    for (group, name) in [
        ("Track1", "Make"),
        ("Track1", "Author"),
        ("Track2", "Model"),
        ("UserData", "Make"),
    ] {
        let want = et[format!("{group}:{name}")]
            .as_str()
            .unwrap_or_else(|| panic!("ExifTool has no {group}:{name}: {et}"));
        assert_eq!(value_of(&r, group, name), Some(want), "{group}:{name}");
    }
    assert_eq!(
        et["Track1:GPSCoordinates"].as_str(),
        Some("10.5 20.25"),
        "{et}"
    );
    assert!(et.get("Keys:Make").is_none(), "{et}");
}

#[test]
fn every_truncation_of_the_new_layouts_is_safe() {
    for f in [mac_keys_movie(), numeric_movie(), tracks_movie()] {
        for n in 0..f.len() {
            no_panic(&run(&f[..n]));
        }
        for p in 0..f.len().saturating_sub(8) {
            if f[p + 4..p + 8]
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == 0xa9)
            {
                let mut g = f.clone();
                g[p..p + 4].copy_from_slice(&u32::MAX.to_be_bytes());
                no_panic(&run(&g));
                // A size one short of the truth.
                let mut g = f.clone();
                let size = u32::from_be_bytes(f[p..p + 4].try_into().unwrap());
                g[p..p + 4].copy_from_slice(&size.saturating_sub(1).to_be_bytes());
                no_panic(&run(&g));
            }
        }
    }
}

proptest::proptest! {
    #[test]
    fn keys_values_and_tracks_take_any_bytes(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        ns in proptest::prelude::any::<[u8; 4]>(),
        typ in proptest::prelude::any::<u32>(),
        k in 0usize..4,
    ) {
        let f = match k {
            // A key of any namespace and bytes, its value a string.
            0 => movie(b"qt  ", &[bx(b"meta", &[hdlr(b"mdta"), keys_ns(&[(&ns, &body)]), ilst_typed(&[(1, b"x".to_vec())])].concat())]),
            // A `data` value of any type and bytes.
            1 => movie(b"qt  ", &[bx(b"meta", &[hdlr(b"mdta"), keys(&["SerialNumber"]), ilst_typed(&[(typ, body.clone())])].concat())]),
            // Any bytes as a track's meta and user data.
            2 => movie(b"qt  ", &[bx(b"trak", &[bx(b"meta", &[hdlr(b"mdta"), body.clone()].concat()), bx(b"udta", &body)].concat())]),
            // Any bytes as a `keys` box in a track.
            _ => movie(b"qt  ", &[bx(b"trak", &bx(b"meta", &[hdlr(b"mdta"), full(b"keys", &body), ilst_indexed(&["a", "b"])].concat()))]),
        };
        no_panic(&run(&f));
    }
}

/// A user-data preview body: a JPEG start and `n` bytes in all.
fn jpeg_bytes(n: usize) -> Vec<u8> {
    let mut v = b"\xff\xd8\xff\xdb".to_vec();
    v.resize(n, 0x11);
    v
}

/// The byte count in ExifTool's "(Binary data N bytes, ...)".
fn binary_len(v: &serde_json::Value) -> Option<u64> {
    v.as_str()?
        .strip_prefix("(Binary data ")?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

#[test]
fn user_data_previews_are_images_as_exiftool_reads_them() {
    let mut thmb = vec![0, 0, 0, 0, 0, 0, 0, 0];
    thmb.extend(jpeg_bytes(120));
    let mut png_thmb = vec![0u8; 8];
    png_thmb.extend_from_slice(b"\x89PNG\r\n\x1a\n....");
    let mut mvhd = vec![0u8; 100];
    mvhd[12..16].copy_from_slice(&600u32.to_be_bytes());
    mvhd[96..100].copy_from_slice(&2u32.to_be_bytes());
    let a = movie(
        b"qt  ",
        &[
            bx(b"mvhd", &mvhd),
            bx(
                b"udta",
                &[bx(b"mcvr", &jpeg_bytes(300)), bx(b"thmb", &thmb)].concat(),
            ),
        ],
    );
    let b = movie(
        b"qt  ",
        &[
            bx(b"mvhd", &mvhd),
            bx(
                b"udta",
                &[bx(b"RTHU", &jpeg_bytes(200)), bx(b"thmb", &png_thmb)].concat(),
            ),
        ],
    );
    let images = |r: &Report| -> Vec<(String, String, String)> {
        r.findings
            .iter()
            .filter(|f| f.category.as_str() == "thumbnail")
            .map(|f| {
                (
                    f.source.group.clone(),
                    f.source.name.clone(),
                    f.value.clone(),
                )
            })
            .collect()
    };
    let ra = run(&a);
    no_panic(&ra);
    let rb = run(&b);
    no_panic(&rb);
    let (ia, ib) = (images(&ra), images(&rb));
    assert_eq!(ia.len(), 2, "{ia:?}");
    assert!(
        ia.iter()
            .any(|(g, n, v)| g == "UserData" && n == "PreviewImage" && v.contains("300")),
        "{ia:?}"
    );
    assert!(
        ia.iter()
            .any(|(g, n, v)| g == "UserData" && n == "ThumbnailImage" && v.contains("120")),
        "{ia:?}"
    );
    // A PNG `thmb` is ExifTool's ThumbnailPNG, outside the thumbnail category: no finding.
    assert_eq!(ib.len(), 1, "{ib:?}");
    assert!(
        ib.iter()
            .any(|(g, n, v)| g == "UserData" && n == "PreviewImage" && v.contains("200")),
        "{ib:?}"
    );

    for (tag, file, want) in [
        (
            "udtaprev_a",
            &a,
            [("PreviewImage", 300u64), ("ThumbnailImage", 120)].as_slice(),
        ),
        ("udtaprev_b", &b, [("PreviewImage", 200u64)].as_slice()),
    ] {
        let Some((et, _)) = exiftool_reads(tag, file, None, &[]) else {
            return;
        };
        for (name, n) in want {
            assert_eq!(
                binary_len(&et[format!("UserData:{name}")]),
                Some(*n),
                "{name}: {et}"
            );
        }
    }
}

#[test]
fn every_truncation_of_user_data_previews_is_safe() {
    let mut thmb = vec![0u8; 8];
    thmb.extend(jpeg_bytes(40));
    let f = movie(
        b"qt  ",
        &[bx(
            b"udta",
            &[
                bx(b"mcvr", &jpeg_bytes(30)),
                bx(b"thmb", &thmb),
                bx(b"RTHU", &jpeg_bytes(20)),
            ]
            .concat(),
        )],
    );
    for n in 0..f.len() {
        no_panic(&run(&f[..n]));
    }
}
