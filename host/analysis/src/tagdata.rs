//! The privacy-relevant tags of every ExifTool table, as committed data.
//!
//! `data/privacy-tags.tsv` is generated from `exiftool -listx` by `tools/gen-privacy-tags.py`
//! (CI runs it with `--check`). It lists, per table (`Canon::Main`, `Panasonic::Leica5`,
//! `Exif::Main`, ...), the tag ids whose names fall in a high-risk category, with ExifTool's name
//! and value type. Maker-note IFD walkers look tags up here, so a serial, owner, face name or
//! place name that ExifTool knows in a maker's table is found without a hand list.

use std::collections::HashMap;
use std::sync::OnceLock;

const TSV: &str = include_str!("../data/privacy-tags.tsv");

/// One row of the data: a tag of one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TagInfo {
    /// ExifTool's tag name (`SerialNumber`).
    pub name: &'static str,
    /// ExifTool's value type (`string`, `int32u`, `undef`, ...; `?` when it does not say).
    pub typ: &'static str,
    /// The category column (`serial`, `owner`, ..., `thumbnail-pointer`).
    pub category: &'static str,
    /// ExifTool's value count for fixed-size values (`string[16]` → 16), else 0.
    pub count: u64,
}

/// Tag id → (table, tag) rows.
type Index = HashMap<u32, Vec<(&'static str, TagInfo)>>;

fn index() -> &'static Index {
    static IDX: OnceLock<Index> = OnceLock::new();
    IDX.get_or_init(|| {
        let mut m: Index = HashMap::new();
        for line in TSV.lines() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let f: Vec<&'static str> = line.split('\t').collect();
            let (Some(table), Some(id), Some(name), Some(typ), Some(count), Some(cat)) =
                (f.first(), f.get(2), f.get(3), f.get(4), f.get(5), f.get(6))
            else {
                continue;
            };
            let Some(id) = id
                .strip_prefix("0x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
            else {
                continue;
            };
            let v = m.entry(id).or_default();
            let info = TagInfo {
                name,
                typ,
                category: cat,
                count: count.parse().unwrap_or(0),
            };
            if !v.contains(&(*table, info)) {
                v.push((*table, info));
            }
        }
        m
    })
}

/// The privacy-relevant tag `id` of ExifTool table `table`, if the data lists one.
///
/// When a table lists several names for one id (ExifTool picks by model), the first is given.
pub(crate) fn lookup(table: &str, id: u32) -> Option<TagInfo> {
    index()
        .get(&id)?
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, info)| *info)
}

/// Every listed tag of ExifTool table `table`: (id, tag), by id.
pub(crate) fn rows(table: &str) -> Vec<(u32, TagInfo)> {
    let mut v: Vec<(u32, TagInfo)> = index()
        .iter()
        .flat_map(|(id, tags)| {
            tags.iter()
                .filter(|(t, _)| *t == table)
                .map(move |(_, info)| (*id, *info))
        })
        .collect();
    v.sort_by_key(|(id, _)| *id);
    v
}

/// Whether a value of this category is read as text or a number by a generic walker (the other
/// categories need a decoder: GPS coordinates, images, image pointers).
pub(crate) fn is_plain(category: &str) -> bool {
    matches!(
        category,
        "serial" | "owner" | "person" | "contact" | "author" | "location-text"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_parses_and_holds_the_makers_tables() {
        assert!(index().len() > 100, "{} ids", index().len());
        let leica = lookup("Panasonic::Leica5", 0x0305).expect("Leica5 serial");
        assert_eq!(
            (leica.name, leica.typ, leica.category),
            ("SerialNumber", "int32u", "serial")
        );
        assert_eq!(
            lookup("Canon::Main", 0x0009).map(|t| t.name),
            Some("OwnerName")
        );
        assert_eq!(lookup("Exif::Main", 0x013b).map(|t| t.name), Some("Artist"));
        assert_eq!(
            lookup("FLIR::GPSInfo", 0x0010).map(|t| t.category),
            Some("gps")
        );
        assert_eq!(lookup("Canon::Main", 0x0001), None);
    }

    #[test]
    fn every_category_in_the_data_is_one_the_classifier_knows() {
        for line in TSV.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split('\t').collect();
            let (Some(name), Some(cat)) = (f.get(3), f.get(6)) else {
                panic!("short row {line:?}");
            };
            if *cat == "thumbnail-pointer" {
                continue;
            }
            let got = crate::classify::classify(name).map(|c| c.as_str());
            assert_eq!(got, Some(*cat), "{line}");
        }
    }
}
