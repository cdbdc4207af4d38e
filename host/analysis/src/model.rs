//! The vocabulary of a report: formats, categories, risk levels, metadata families and findings.
//!
//! Category names serialise to the corpus vocabulary (`gps`, `location-text`,
//! `thumbnail-mismatch`, ...) so reports can be scored against ExifTool's reading with
//! `privacy-recall`. Risk levels serialise lowercase and are ordered `none < low < medium < high
//! < critical`.

use serde::{Deserialize, Serialize};

/// How risky a finding, or a whole file, is: the host's one risk type, from `proofpix-model`.
pub use proofpix_model::RiskLevel;

/// The privacy category of a finding (the corpus vocabulary plus three extra checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Category {
    /// Coordinates of the shot or a destination.
    Gps,
    /// Body, lens or internal serial numbers.
    Serial,
    /// The camera owner's name.
    Owner,
    /// Named people: face regions, persons shown, baby names.
    Person,
    /// Creator e-mail, phone, address, URL.
    Contact,
    /// Artist, author, creator, by-line.
    Author,
    /// Place names.
    LocationText,
    /// Embedded thumbnails and previews.
    Thumbnail,
    /// Identifiers that link copies.
    UniqueId,
    /// Editing history, original file names and paths.
    History,
    /// Capture and modification times.
    Timestamp,
    /// Make, model, lens, software.
    Device,
    /// Copyright notices.
    Copyright,
    /// Free text: descriptions, comments, keywords, titles.
    Text,
    /// Data after the end of the image.
    Trailer,
    /// A thumbnail or preview that does not show the main image.
    ThumbnailMismatch,
    /// Video or other media appended to or embedded in the image.
    EmbeddedMedia,
    /// Personal data in text the picture shows, read by OCR (the pixel stage).
    TextPii,
    /// A QR code or barcode the picture shows, and what its payload carries (the pixel stage).
    Barcode,
    /// A person's face the picture shows (the pixel stage).
    Face,
}

impl Category {
    /// Every category, in report order.
    pub const ALL: [Category; 20] = [
        Self::Gps,
        Self::Serial,
        Self::Owner,
        Self::Person,
        Self::Contact,
        Self::Author,
        Self::LocationText,
        Self::Thumbnail,
        Self::UniqueId,
        Self::History,
        Self::Timestamp,
        Self::Device,
        Self::Copyright,
        Self::Text,
        Self::Trailer,
        Self::ThumbnailMismatch,
        Self::EmbeddedMedia,
        Self::TextPii,
        Self::Barcode,
        Self::Face,
    ];

    /// The vocabulary name (`location-text`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gps => "gps",
            Self::Serial => "serial",
            Self::Owner => "owner",
            Self::Person => "person",
            Self::Contact => "contact",
            Self::Author => "author",
            Self::LocationText => "location-text",
            Self::Thumbnail => "thumbnail",
            Self::UniqueId => "unique-id",
            Self::History => "history",
            Self::Timestamp => "timestamp",
            Self::Device => "device",
            Self::Copyright => "copyright",
            Self::Text => "text",
            Self::Trailer => "trailer",
            Self::ThumbnailMismatch => "thumbnail-mismatch",
            Self::EmbeddedMedia => "embedded-media",
            Self::TextPii => "text-pii",
            Self::Barcode => "barcode",
            Self::Face => "face",
        }
    }

    /// The prefix of this category's finding codes (`location` for `location.place`).
    pub fn code_prefix(self) -> &'static str {
        match self {
            Self::LocationText => "location",
            Self::UniqueId => "unique_id",
            Self::ThumbnailMismatch => "thumbnail_mismatch",
            Self::EmbeddedMedia => "embedded_media",
            Self::TextPii => "text_pii",
            other => other.as_str(),
        }
    }

    /// Parse a vocabulary name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether the corpus counts this category as high-risk.
    pub fn is_high_risk(self) -> bool {
        matches!(
            self,
            Self::Gps
                | Self::Serial
                | Self::Owner
                | Self::Person
                | Self::Contact
                | Self::Author
                | Self::LocationText
                | Self::Thumbnail
        )
    }

    /// Whether a finding of this category names or reaches a person (for the GPS+person rule).
    pub fn identifies_person(self) -> bool {
        matches!(
            self,
            Self::Person | Self::Owner | Self::Author | Self::Contact
        )
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The metadata family a finding came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Family {
    /// EXIF/TIFF IFDs, including GPS and IFD1.
    Exif,
    /// XMP packets.
    Xmp,
    /// IPTC-IIM datasets.
    Iptc,
    /// ICC profile header and tags.
    Icc,
    /// Maker notes and vendor blocks (Canon, Nikon, FLIR, ...).
    MakerNote,
    /// Photoshop image resources.
    Photoshop,
    /// Container structures: comments, text chunks, trailers, thumbnails outside EXIF.
    Container,
    /// The picture itself (the pixel stage: OCR text, QR codes), not its metadata.
    Pixels,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 8] = [
        Self::Exif,
        Self::Xmp,
        Self::Iptc,
        Self::Icc,
        Self::MakerNote,
        Self::Photoshop,
        Self::Container,
        Self::Pixels,
    ];

    /// The name used in JSON (`maker-note`) and in a finding's source label
    /// (`maker-note:Canon/0x000c`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exif => "exif",
            Self::Xmp => "xmp",
            Self::Iptc => "iptc",
            Self::Icc => "icc",
            Self::MakerNote => "maker-note",
            Self::Photoshop => "photoshop",
            Self::Container => "container",
            Self::Pixels => "pixels",
        }
    }

    /// Parse the name [`Family::as_str`] gives.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// Where a finding came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// Family of the metadata.
    pub family: Family,
    /// Group in ExifTool's terms (`IFD0`, `GPS`, `XMP-dc`, `IPTC`, `Canon`, `JPEG`, ...).
    pub group: String,
    /// Tag id (`0x013b`), XMP path (`dc:creator`), IPTC dataset (`2:80`) or structure name.
    pub tag: String,
    /// Human-readable tag name (ExifTool's where one exists: `Artist`).
    pub name: String,
    /// Byte offset in the file of the value or of the structure holding it, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// One privacy-relevant fact about a file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Category from the corpus vocabulary.
    pub category: Category,
    /// Stable code (`gps.coordinates`).
    pub code: String,
    /// Severity under the active policy.
    pub severity: RiskLevel,
    /// Where it came from.
    pub source: Source,
    /// The value as a reviewer reads it; masked unless `show_values`.
    pub value: String,
    /// Extra context (GPS precision class, "also in XMP", ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Where in the picture, for what the pixel stage found (metadata findings have none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
    /// How sure the detector is, 0 to 1, for what the pixel stage found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
}

/// An axis-aligned box in the image's pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Region {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

/// What the pixel stage did with a file, when it ran: its steps, its notes (OCR unavailable, a
/// time budget spent) and why it skipped the image, if it did. Without a complete run the
/// absence of pixel findings means nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct PixelRun {
    /// Steps that ran to completion (`decode`, `codes`, `text`).
    pub completed: Vec<String>,
    /// Problems of steps that did not complete.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Why the image was not analysed at all, if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl PixelRun {
    /// The stage did not look at the image at all, for `reason` (too large to read whole,
    /// unreadable): no step completed.
    pub fn skipped(reason: impl Into<String>) -> Self {
        PixelRun {
            skipped: Some(reason.into()),
            ..Default::default()
        }
    }
}

/// A detected container format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Format {
    /// JPEG/JFIF/EXIF (also MPO and Exiv2's EXV).
    Jpeg,
    /// TIFF and TIFF-based RAW (DNG, CR2, NEF, ARW, ORF, RW2, PEF, IIQ, ...).
    Tiff,
    /// PNG.
    Png,
    /// WebP (RIFF).
    Webp,
    /// HEIC/HEIF/AVIF and other ISO-BMFF images (CR3).
    Heif,
    /// JPEG 2000 (JP2 boxes).
    Jp2,
    /// JPEG XL container.
    Jxl,
    /// GIF.
    Gif,
    /// Photoshop PSD/PSB.
    Psd,
    /// Canon CRW (CIFF).
    Crw,
    /// Fujifilm RAF.
    Raf,
    /// Minolta MRW.
    Mrw,
    /// Sigma X3F.
    X3f,
    /// Windows BMP (no metadata families).
    Bmp,
    /// QuickTime/MP4 video (MOV, MP4, M4V, 3GP): the vendor tables of its user data only.
    QuickTime,
    /// FLIR Public image Format (`.fpf`): a fixed 892-byte header, then raw temperatures.
    Fpf,
    /// Anything else: reported as unsupported, never guessed.
    Unsupported,
}

impl Format {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Tiff => "tiff",
            Self::Png => "png",
            Self::Webp => "webp",
            Self::Heif => "heif",
            Self::Jp2 => "jp2",
            Self::Jxl => "jxl",
            Self::Gif => "gif",
            Self::Psd => "psd",
            Self::Crw => "crw",
            Self::Raf => "raf",
            Self::Mrw => "mrw",
            Self::X3f => "x3f",
            Self::Bmp => "bmp",
            Self::QuickTime => "quicktime",
            Self::Fpf => "fpf",
            Self::Unsupported => "unsupported",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
