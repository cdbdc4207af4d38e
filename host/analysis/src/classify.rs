//! Which privacy category a tag name belongs to: the data table behind every finding.
//!
//! Parsers only extract tags and name them the way ExifTool does (`Artist`, `GPSLatitude`,
//! `CreatorWorkEmail`, `By-line`); this table decides the category. It mirrors, pattern for
//! pattern, the table that defines the categories for the shared corpus
//! (`../shared/tools/privacy-recall`), so a finding's category means exactly what the corpus
//! vocabulary says. Patterns are anchored; the first match wins, as in the scorer.
//!
//! Values that carry nothing (empty, `0`, `(none)`, `Unknown`) are not findings
//! ([`is_empty_value`]), again as in the scorer.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use regex::Regex;

use crate::model::Category;

/// The category table: (category, anchored pattern over the tag name), first match wins.
pub const CATEGORY_PATTERNS: &[(Category, &str)] = &[
    (
        Category::Gps,
        r"GPS(Dest)?(Latitude|Longitude)|GPSCoordinates|GPSPosition|Location(Shown|Created)GPS(Latitude|Longitude)",
    ),
    (
        Category::Serial,
        r"(Body|Lens|Internal|Camera|Sensor|Flash|Extender|Filter|Scanner)?SerialNumber|InternalSerialNumber",
    ),
    (Category::Owner, r"(Camera)?OwnerName|CameraOwner"),
    (
        Category::Person,
        r"RegionName|RegionPersonDisplayName|PersonInImage(Name|WDetails)?|ImageRegionPersonInImage|Face\d*Name|RecognizedFace\d*Name|FaceName|BabyName|PetName",
    ),
    (
        Category::Contact,
        r"Creator(WorkEmail|WorkTelephone|Address|City|PostalCode|Region|Country|WorkURL)|CiEmailWork|CiTelWork|CiAdr\w*|CiUrlWork|Contact|Licensor(Email|Telephone\d*|StreetAddress|City)",
    ),
    (
        Category::Author,
        r"Artist|XPAuthor|Author|Creator|By-line|ImageCreatorName|Writer-Editor|CaptionWriter",
    ),
    (
        Category::LocationText,
        r"City|Sub-location|Sublocation|Province-State|ProvinceState|Country-PrimaryLocationName|State|Country|Location(Shown|Created)(City|Sublocation|ProvinceState|CountryName)|Landmark|Location",
    ),
    (
        Category::UniqueId,
        r"ImageUniqueID|DocumentID|OriginalDocumentID|InstanceID|DerivedFrom(Original)?DocumentID|ContentIdentifier|MediaUniqueID",
    ),
    (
        Category::History,
        r"History\w*|DocumentAncestors|RawFileName|OriginalRawFileName|OriginalFileName|PreservedFileName",
    ),
    (
        Category::Thumbnail,
        r"ThumbnailImage|ThumbnailTIFF|PreviewImage|PhotoshopThumbnail|PhotoshopBGRThumbnail|JpgFromRaw|OtherImage|PreviewPNG",
    ),
    (
        Category::Timestamp,
        r"DateTimeOriginal|CreateDate|ModifyDate|DateCreated|GPSDateStamp|DigitalCreationDate|SubSecDateTimeOriginal",
    ),
    (Category::Device, r"Make|Model|LensModel|LensMake|Software"),
    (
        Category::Copyright,
        r"Copyright|CopyrightNotice|Rights|CopyrightOwnerName",
    ),
    (
        Category::Text,
        r"ImageDescription|UserComment|XPComment|XPTitle|XPSubject|XPKeywords|Caption-Abstract|Description|Comment|Keywords|Headline|Title|ObjectName|SpecialInstructions",
    ),
];

fn compiled() -> &'static [(Category, Regex)] {
    static TABLE: OnceLock<Vec<(Category, Regex)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        CATEGORY_PATTERNS
            .iter()
            .filter_map(|(c, p)| Regex::new(&format!("^(?:{p})$")).ok().map(|r| (*c, r)))
            .collect()
    })
}

fn classify_uncached(name: &str) -> Option<Category> {
    // Language alternatives (`Rights-fr`, `Title-en-US`) carry the base name's category.
    let base = strip_lang(name);
    compiled()
        .iter()
        .find(|(_, rx)| rx.is_match(base))
        .map(|(c, _)| *c)
}

fn strip_lang(name: &str) -> &str {
    let b = name.as_bytes();
    let lower2 = |s: &[u8]| s.len() == 2 && s.iter().all(u8::is_ascii_lowercase);
    let upper2 = |s: &[u8]| s.len() == 2 && s.iter().all(u8::is_ascii_uppercase);
    // -xx or -xx-XX at the end
    if let Some(pos) = name.rfind('-') {
        let (head, tail) = (
            b.get(..pos).unwrap_or(&[]),
            b.get(pos.saturating_add(1)..).unwrap_or(&[]),
        );
        if lower2(tail) {
            return name.get(..pos).unwrap_or(name);
        }
        if upper2(tail)
            && let Some(p2) = name.get(..pos).and_then(|h| h.rfind('-'))
            && lower2(head.get(p2.saturating_add(1)..).unwrap_or(&[]))
        {
            return name.get(..p2).unwrap_or(name);
        }
    }
    name
}

/// The category of an ExifTool-style tag name, if it is privacy-relevant.
///
/// Results are cached: the set of names seen in practice is small.
pub fn classify(name: &str) -> Option<Category> {
    // Read-mostly: the pipeline analyses files on several threads at once.
    static CACHE: OnceLock<RwLock<HashMap<String, Option<Category>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| RwLock::new(HashMap::new()));
    if let Ok(map) = cache.read()
        && let Some(c) = map.get(name)
    {
        return *c;
    }
    let c = classify_uncached(name);
    if let Ok(mut map) = cache.write()
        && map.len() < 65_536
    {
        map.insert(name.to_owned(), c);
    }
    c
}

/// Whether a value carries nothing worth reporting (the scorer's empty set).
pub fn is_empty_value(v: &str) -> bool {
    matches!(
        v.trim(),
        "" | "0" | "0 0" | "(none)" | "none" | "Unknown" | "unknown"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        assert_eq!(compiled().len(), CATEGORY_PATTERNS.len());
    }

    #[test]
    fn names_map_to_the_corpus_categories() {
        let cases = [
            ("GPSLatitude", Some(Category::Gps)),
            ("GPSDestLongitude", Some(Category::Gps)),
            ("SerialNumber", Some(Category::Serial)),
            ("InternalSerialNumber", Some(Category::Serial)),
            ("OwnerName", Some(Category::Owner)),
            ("RegionName", Some(Category::Person)),
            ("CreatorWorkEmail", Some(Category::Contact)),
            ("CreatorCity", Some(Category::Contact)),
            ("By-line", Some(Category::Author)),
            ("Country-PrimaryLocationName", Some(Category::LocationText)),
            ("ThumbnailImage", Some(Category::Thumbnail)),
            ("DocumentID", Some(Category::UniqueId)),
            ("HistoryAction", Some(Category::History)),
            ("ModifyDate", Some(Category::Timestamp)),
            ("Software", Some(Category::Device)),
            ("Rights-fr", Some(Category::Copyright)),
            ("Title-en-US", Some(Category::Text)),
            ("ExposureTime", None),
            ("CreatorTool", None),
            ("GPSAltitude", None),
        ];
        for (name, want) in cases {
            assert_eq!(classify(name), want, "{name}");
        }
    }
}
