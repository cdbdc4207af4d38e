//! Lossless sanitised copies (placeholder until the writer lands).

use crate::source::ByteSource;

/// What to keep.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct StripOptions {
    /// Drop the ICC profile too (default: keep it, colours depend on it).
    pub drop_icc: bool,
    /// Drop the orientation (default: keep it as a minimal EXIF block).
    pub drop_orientation: bool,
}

/// A sanitised copy.
#[derive(Debug, Clone)]
pub struct Stripped {
    /// The new file.
    pub bytes: Vec<u8>,
    /// What was removed.
    pub removed: Vec<String>,
    /// What was kept.
    pub kept: Vec<String>,
}

/// Why no sanitised copy was produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StripError {
    /// The format has no writer.
    #[error("cannot strip {0} files losslessly yet")]
    Unsupported(String),
}

/// Write a sanitised copy.
///
/// # Errors
/// See [`StripError`].
pub fn strip(_src: &dyn ByteSource, _opts: &StripOptions) -> Result<Stripped, StripError> {
    Err(StripError::Unsupported("any".to_owned()))
}
