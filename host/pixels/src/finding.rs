//! What the pixel stage reports: findings with a box and a confidence.
//!
//! The fields mirror `proofpix_analysis::Finding` (category, code, severity, value masked
//! unless asked, detail) and add what only pixels have: where in the picture, and how sure
//! the detector is. The categories are the vocabulary's `text-pii`, `barcode` and `face`;
//! [`PixelFinding::into_finding`] makes an analysis finding of one.

use proofpix_analysis::RiskLevel;
use serde::Serialize;

/// The pixel categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PixelCategory {
    /// Personal data in text seen in the picture (OCR).
    TextPii,
    /// A QR code or barcode and what its payload carries.
    Barcode,
    /// A person's face.
    Face,
}

impl PixelCategory {
    /// The vocabulary name (`text-pii`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TextPii => "text-pii",
            Self::Barcode => "barcode",
            Self::Face => "face",
        }
    }
}

/// An axis-aligned box in the original image's pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct BBox {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

impl BBox {
    /// The smallest box holding both.
    pub fn union(self, o: BBox) -> BBox {
        let x0 = self.x.min(o.x);
        let y0 = self.y.min(o.y);
        let x1 = self.x.saturating_add(self.w).max(o.x.saturating_add(o.w));
        let y1 = self.y.saturating_add(self.h).max(o.y.saturating_add(o.h));
        BBox {
            x: x0,
            y: y0,
            w: x1.saturating_sub(x0),
            h: y1.saturating_sub(y0),
        }
    }

    /// Scale from analysis pixels to original pixels, clamped to the original's size.
    pub fn scaled(self, scale: f64, width: u32, height: u32) -> BBox {
        let s = |v: u32| -> u32 {
            (f64::from(v) * scale)
                .round()
                .clamp(0.0, f64::from(u32::MAX)) as u32
        };
        let x = s(self.x).min(width);
        let y = s(self.y).min(height);
        BBox {
            x,
            y,
            w: s(self.w).min(width.saturating_sub(x)),
            h: s(self.h).min(height.saturating_sub(y)),
        }
    }
}

/// One privacy-relevant thing seen in the pixels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PixelFinding {
    /// `text-pii`, `barcode` or `face`.
    pub category: PixelCategory,
    /// Stable code (`text_pii.card_number`, `barcode.wifi`).
    pub code: String,
    /// Severity before any policy override.
    pub severity: RiskLevel,
    /// Where in the original image.
    pub bbox: BBox,
    /// 0..=1: the detector's certainty (checksum-validated text scores higher than a pattern;
    /// OCR confidence scales text findings).
    pub confidence: f32,
    /// The value as a reviewer reads it; masked unless the stage shows values.
    pub value: String,
    /// Extra context ("Luhn-valid Visa number", "WPA network with a password").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl PixelFinding {
    /// This finding as an analysis finding (family `pixels`, group `OCR`, `QR` or `Faces`), its
    /// severity under `policy`.
    pub fn into_finding(self, policy: &proofpix_analysis::Policy) -> proofpix_analysis::Finding {
        use proofpix_analysis::{Category, Family, Finding, Region, Source};
        let (category, group, name) = match self.category {
            PixelCategory::TextPii => (Category::TextPii, "OCR", "TextInImage"),
            PixelCategory::Barcode => (Category::Barcode, "QR", "CodeInImage"),
            PixelCategory::Face => (Category::Face, "Faces", "FaceInImage"),
        };
        Finding {
            category,
            severity: policy.severity(&self.code, category, self.severity),
            source: Source {
                family: Family::Pixels,
                group: group.to_owned(),
                tag: self.code.clone(),
                name: name.to_owned(),
                offset: None,
            },
            code: self.code,
            value: self.value,
            detail: self.detail,
            region: Some(Region {
                x: self.bbox.x,
                y: self.bbox.y,
                w: self.bbox.w,
                h: self.bbox.h,
            }),
            confidence: Some(self.confidence),
        }
    }
}
