//! Metadata families: EXIF/TIFF, maker notes, XMP, IPTC-IIM, Photoshop resources, ICC.

pub(crate) mod fpxr;
pub(crate) mod gpmf;
pub(crate) mod icc;
pub(crate) mod iptc;
pub(crate) mod irb;
pub(crate) mod leaf;
pub(crate) mod makernote;
pub(crate) mod tiff;
pub(crate) mod xmp;
