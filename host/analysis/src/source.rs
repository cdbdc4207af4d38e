//! Random-access byte sources and the counting reader every parser goes through.
//!
//! Threat model: the bytes come from an attacker, and so do every offset and length read from
//! them. Parsers never index the file; they ask [`Reader::read`] for `(offset, len)`, which checks
//! the arithmetic, refuses ranges past the end of the source and caps one read at
//! [`MAX_READ_BYTES`], so a 4 GiB length field costs an error, not an allocation.
//!
//! Range mode: a host that fetches remote files with HTTP Range requests implements
//! [`ByteSource`] over a sparse cache and returns [`SourceError::Missing`] for bytes it has not
//! fetched yet. The reader records each missing range in [`Reader::needs`]; the parser that asked
//! gives up on that structure only and the analysis goes on, so the host can fetch what is listed
//! in `Report::needs` and analyse again.
//!
//! [`Reader`] counts every byte it takes from the source (`bytes_read`), including its small
//! read-ahead, which is what a remote host would have to fetch.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::os::unix::fs::FileExt;

use serde::Serialize;

/// The largest single read a parser may make (64 MiB). Metadata blocks are far smaller; a larger
/// declared length is treated as hostile.
pub const MAX_READ_BYTES: u64 = 64 * 1024 * 1024;

/// Windows kept for re-reads (segment headers followed by their payloads, the tail window).
const CACHE_ENTRIES: usize = 8;
/// Largest single read kept in the window cache.
const CACHE_ENTRY_MAX_BYTES: usize = 256 * 1024;

/// Small reads are widened to this window (clamped to the file) so that walking a chain of
/// segment headers costs one source read per window rather than one per header.
const READ_AHEAD_BYTES: u64 = 4096;

/// Why a source could not provide a range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The range has not been fetched yet: the host fetches it and runs the analysis again.
    #[error("bytes {offset}..+{len} are not available yet")]
    Missing {
        /// First byte of the missing range.
        offset: u64,
        /// Length of the missing range.
        len: u64,
    },
    /// The underlying storage failed.
    #[error("read failed: {0}")]
    Io(String),
    /// The range lies (partly) past the end of the source.
    #[error("read past the end of the file")]
    OutOfBounds,
}

/// Random-access bytes.
///
/// Implemented for `[u8]`, `Vec<u8>` and [`std::fs::File`] (positional reads), and by the host for
/// a sparse HTTP-range cache.
pub trait ByteSource {
    /// Total length of the file in bytes.
    fn len(&self) -> u64;
    /// Whether the source is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fill `buf` with the bytes at `offset..offset + buf.len()`.
    ///
    /// # Errors
    /// [`SourceError::OutOfBounds`] when the range passes the end, [`SourceError::Missing`] when a
    /// sparse source lacks the range, [`SourceError::Io`] for storage failures.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError>;
}

impl ByteSource for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        let start = usize::try_from(offset).map_err(|_| SourceError::OutOfBounds)?;
        let end = start
            .checked_add(buf.len())
            .ok_or(SourceError::OutOfBounds)?;
        let part = self.get(start..end).ok_or(SourceError::OutOfBounds)?;
        buf.copy_from_slice(part);
        Ok(())
    }
}

impl ByteSource for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        self.as_slice().read_at(offset, buf)
    }
}

/// A file read with positional reads (`pread`); its length is taken once when it is wrapped.
#[derive(Debug)]
pub struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    /// Wrap an open file.
    ///
    /// # Errors
    /// When the file's metadata cannot be read.
    pub fn new(file: File) -> std::io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(Self { file, len })
    }
}

impl ByteSource for FileSource {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or(SourceError::OutOfBounds)?;
        if end > self.len {
            return Err(SourceError::OutOfBounds);
        }
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| SourceError::Io(e.to_string()))
    }
}

impl ByteSource for File {
    fn len(&self) -> u64 {
        self.metadata().map(|m| m.len()).unwrap_or(0)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or(SourceError::OutOfBounds)?;
        if end > ByteSource::len(self) {
            return Err(SourceError::OutOfBounds);
        }
        self.read_exact_at(buf, offset)
            .map_err(|e| SourceError::Io(e.to_string()))
    }
}

/// A byte range of the source, as listed in `Report::needs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ByteRange {
    /// First byte.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// Why a parser could not get bytes it asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The source does not have the range yet (recorded in `needs`).
    #[error("bytes {0}..+{1} not fetched yet")]
    Missing(u64, u64),
    /// Offset or length from the file points past its end, or overflows.
    #[error("offset {0} + length {1} is outside the file")]
    OutOfBounds(u64, u64),
    /// A declared length is larger than any metadata block we accept.
    #[error("declared length {0} exceeds the {MAX_READ_BYTES}-byte read cap")]
    TooLarge(u64),
    /// Storage failure.
    #[error("{0}")]
    Io(String),
}

/// The counting, bounds-checking reader over a [`ByteSource`].
pub struct Reader<'a> {
    src: &'a dyn ByteSource,
    len: u64,
    bytes_read: Cell<u64>,
    /// Recently fetched windows (offset, bytes), oldest first.
    cache: RefCell<Vec<(u64, Vec<u8>)>>,
    needs: RefCell<Vec<ByteRange>>,
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("len", &self.len)
            .field("bytes_read", &self.bytes_read.get())
            .finish_non_exhaustive()
    }
}

impl<'a> Reader<'a> {
    /// Wrap a source.
    pub fn new(src: &'a dyn ByteSource) -> Self {
        Self {
            src,
            len: src.len(),
            bytes_read: Cell::new(0),
            cache: RefCell::new(Vec::new()),
            needs: RefCell::new(Vec::new()),
        }
    }

    /// Length of the source.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the source is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes taken from the source so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.get()
    }

    /// Ranges the source reported as missing, sorted, overlapping ones merged.
    pub fn needs(&self) -> Vec<ByteRange> {
        let mut v = self.needs.borrow().clone();
        v.sort();
        let mut out: Vec<ByteRange> = Vec::with_capacity(v.len());
        for r in v {
            match out.last_mut() {
                Some(last) if r.offset <= last.offset.saturating_add(last.len) => {
                    let end = last
                        .offset
                        .saturating_add(last.len)
                        .max(r.offset.saturating_add(r.len));
                    last.len = end.saturating_sub(last.offset);
                }
                _ => out.push(r),
            }
        }
        out
    }

    /// Ask the host for a wider range than the read that failed (a walker that cannot skip
    /// ahead without the bytes, such as PNG's chunk chain, asks for the rest of the file at once
    /// rather than one header per round).
    pub fn need(&self, range: ByteRange) {
        self.needs.borrow_mut().push(range);
    }

    fn check(&self, offset: u64, len: u64) -> Result<(), ReadError> {
        if len > MAX_READ_BYTES {
            return Err(ReadError::TooLarge(len));
        }
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(ReadError::OutOfBounds(offset, len)),
        }
    }

    fn raw(&self, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        match self.src.read_at(offset, buf) {
            Ok(()) => {
                self.bytes_read
                    .set(self.bytes_read.get().saturating_add(buf.len() as u64));
                Ok(())
            }
            Err(SourceError::Missing { offset, len }) => {
                self.needs.borrow_mut().push(ByteRange { offset, len });
                Err(ReadError::Missing(offset, len))
            }
            Err(SourceError::OutOfBounds) => Err(ReadError::OutOfBounds(offset, buf.len() as u64)),
            Err(SourceError::Io(e)) => Err(ReadError::Io(e)),
        }
    }

    /// Read exactly `len` bytes at `offset`.
    ///
    /// Bytes already fetched (a recent window) are served from memory and not counted again;
    /// a read that starts inside a cached window fetches only the rest.
    ///
    /// # Errors
    /// See [`ReadError`]; a missing range is also recorded in [`Reader::needs`].
    pub fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>, ReadError> {
        self.check(offset, len)?;
        let ulen = usize::try_from(len).map_err(|_| ReadError::TooLarge(len))?;
        let mut prefix: Vec<u8> = Vec::new();
        {
            let cache = self.cache.borrow();
            for (w_off, w) in cache.iter().rev() {
                let Some(rel) = offset
                    .checked_sub(*w_off)
                    .and_then(|r| usize::try_from(r).ok())
                else {
                    continue;
                };
                let Some(avail) = w.get(rel..) else { continue };
                if avail.len() >= ulen {
                    return Ok(avail.get(..ulen).map(<[u8]>::to_vec).unwrap_or_default());
                }
                if avail.len() > prefix.len() {
                    prefix = avail.to_vec();
                }
            }
        }
        let rest_off = offset.saturating_add(prefix.len() as u64);
        let rest_len = len.saturating_sub(prefix.len() as u64);
        if rest_len < READ_AHEAD_BYTES {
            let wlen = READ_AHEAD_BYTES.min(self.len.saturating_sub(rest_off));
            if let Ok(wl) = usize::try_from(wlen) {
                let mut buf = vec![0u8; wl];
                // Try the widened window quietly first; a sparse source may lack part of it.
                if let Ok(()) = self.src.read_at(rest_off, &mut buf) {
                    self.bytes_read
                        .set(self.bytes_read.get().saturating_add(wlen));
                    let want = usize::try_from(rest_len).unwrap_or(usize::MAX);
                    let out = buf.get(..want).map(<[u8]>::to_vec);
                    self.remember(rest_off, buf);
                    if let Some(out) = out {
                        prefix.extend_from_slice(&out);
                        return Ok(prefix);
                    }
                }
            }
        }
        let mut buf = vec![0u8; usize::try_from(rest_len).map_err(|_| ReadError::TooLarge(len))?];
        self.raw(rest_off, &mut buf)?;
        if buf.len() <= CACHE_ENTRY_MAX_BYTES {
            self.remember(rest_off, buf.clone());
        }
        prefix.extend_from_slice(&buf);
        Ok(prefix)
    }

    fn remember(&self, offset: u64, data: Vec<u8>) {
        let mut cache = self.cache.borrow_mut();
        if cache.len() >= CACHE_ENTRIES {
            cache.remove(0);
        }
        cache.push((offset, data));
    }

    /// Read up to `len` bytes at `offset`, clamped to the end of the source.
    ///
    /// # Errors
    /// As [`Reader::read`].
    pub fn read_upto(&self, offset: u64, len: u64) -> Result<Vec<u8>, ReadError> {
        let avail = self.len.saturating_sub(offset);
        self.read(offset, len.min(avail).min(MAX_READ_BYTES))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_past_the_end_is_refused_without_allocating() {
        let data = vec![1u8, 2, 3];
        let r = Reader::new(&data);
        assert!(matches!(r.read(2, u64::MAX), Err(ReadError::TooLarge(_))));
        assert!(matches!(
            r.read(u64::MAX, 2),
            Err(ReadError::OutOfBounds(..))
        ));
        assert_eq!(r.read(1, 2), Ok(vec![2, 3]));
    }

    struct Sparse(Vec<u8>, u64);
    impl ByteSource for Sparse {
        fn len(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
            if offset.saturating_add(buf.len() as u64) > self.1 {
                return Err(SourceError::Missing {
                    offset,
                    len: buf.len() as u64,
                });
            }
            self.0.as_slice().read_at(offset, buf)
        }
    }

    #[test]
    fn a_missing_range_is_recorded_as_needed() {
        let s = Sparse(vec![0u8; 10_000], 100);
        let r = Reader::new(&s);
        assert!(r.read(0, 10).is_ok());
        assert!(matches!(
            r.read(5000, 10),
            Err(ReadError::Missing(5000, 10))
        ));
        assert_eq!(
            r.needs(),
            vec![ByteRange {
                offset: 5000,
                len: 10
            }]
        );
    }
}
