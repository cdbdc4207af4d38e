//! A byte source made of the ranges fetched so far.
//!
//! The analysis core reads through [`ByteSource`]; a read outside the fetched
//! ranges answers [`SourceError::Missing`], which the analysis records in
//! `Report::needs`. The pipeline fetches those ranges with HTTP Range
//! requests and analyses again, a bounded number of rounds, so a remote JPEG
//! costs its header and a tail window instead of its whole body.

use std::collections::BTreeMap;

use proofpix_analysis::{ByteRange, ByteSource, SourceError};

/// Fetched ranges of a file of known length.
#[derive(Debug, Clone, Default)]
pub struct SparseSource {
    len: u64,
    /// Start offset → bytes; ranges do not overlap (merged on insert).
    ranges: BTreeMap<u64, Vec<u8>>,
}

impl SparseSource {
    /// An empty source for a file of `len` bytes.
    pub fn new(len: u64) -> Self {
        SparseSource {
            len,
            ranges: BTreeMap::new(),
        }
    }

    /// Adds fetched bytes at `offset`, merging with neighbours.
    pub fn insert(&mut self, offset: u64, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        let mut start = offset;
        let mut data = bytes;
        // Merge with any range that overlaps or touches [start, end).
        loop {
            let end = start + data.len() as u64;
            let neighbour = self
                .ranges
                .range(..=end)
                .rev()
                .find(|(s, d)| **s + d.len() as u64 >= start)
                .map(|(s, _)| *s);
            let Some(s) = neighbour else { break };
            let Some(existing) = self.ranges.remove(&s) else {
                break;
            };
            let e_end = s + existing.len() as u64;
            let new_start = s.min(start);
            let new_end = e_end.max(end);
            let mut merged = vec![0u8; (new_end - new_start) as usize];
            let put = |buf: &mut Vec<u8>, at: u64, src: &[u8]| {
                let off = (at - new_start) as usize;
                if let Some(dst) = buf.get_mut(off..off + src.len()) {
                    dst.copy_from_slice(src);
                }
            };
            put(&mut merged, s, &existing);
            put(&mut merged, start, &data);
            start = new_start;
            data = merged;
        }
        self.ranges.insert(start, data);
    }

    /// Bytes held.
    pub fn held(&self) -> u64 {
        self.ranges.values().map(|v| v.len() as u64).sum()
    }

    /// Whether every byte is held.
    pub fn is_complete(&self) -> bool {
        self.held() >= self.len
    }

    /// The parts of `ranges` not held yet, merged and clamped to the file.
    pub fn missing(&self, wanted: &[ByteRange]) -> Vec<(u64, u64)> {
        let mut spans: Vec<(u64, u64)> = wanted
            .iter()
            .map(|r| {
                (
                    r.offset.min(self.len),
                    r.offset.saturating_add(r.len).min(self.len),
                )
            })
            .filter(|(s, e)| e > s)
            .collect();
        spans.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for (s, e) in spans {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        merged
            .into_iter()
            .filter(|(s, e)| !self.covers(*s, *e))
            .map(|(s, e)| (s, e - s))
            .collect()
    }

    fn covers(&self, start: u64, end: u64) -> bool {
        self.ranges
            .range(..=start)
            .next_back()
            .is_some_and(|(s, d)| *s <= start && s + d.len() as u64 >= end)
    }
}

impl ByteSource for SparseSource {
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
        match self.ranges.range(..=offset).next_back() {
            Some((s, d)) if s + d.len() as u64 >= end => {
                let from = (offset - s) as usize;
                if let Some(src) = d.get(from..from + buf.len()) {
                    buf.copy_from_slice(src);
                    return Ok(());
                }
                Err(SourceError::Missing {
                    offset,
                    len: buf.len() as u64,
                })
            }
            _ => Err(SourceError::Missing {
                offset,
                len: buf.len() as u64,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inside_fetched_ranges_succeed_and_others_are_missing() {
        let mut s = SparseSource::new(100);
        s.insert(0, (0u8..10).collect());
        s.insert(90, (90u8..100).collect());
        let mut buf = [0u8; 4];
        s.read_at(2, &mut buf).unwrap();
        assert_eq!(buf, [2, 3, 4, 5]);
        s.read_at(95, &mut buf).unwrap();
        assert_eq!(buf, [95, 96, 97, 98]);
        assert_eq!(
            s.read_at(8, &mut buf),
            Err(SourceError::Missing { offset: 8, len: 4 })
        );
        assert_eq!(s.read_at(98, &mut buf), Err(SourceError::OutOfBounds));
    }

    #[test]
    fn overlapping_and_touching_inserts_merge() {
        let mut s = SparseSource::new(100);
        s.insert(10, vec![1; 10]);
        s.insert(20, vec![2; 10]);
        s.insert(5, vec![3; 10]);
        assert_eq!(s.ranges.len(), 1);
        assert_eq!(s.held(), 25);
        let mut buf = [0u8; 25];
        s.read_at(5, &mut buf).unwrap();
        assert_eq!(&buf[..10], &[3; 10]);
        assert_eq!(&buf[10..15], &[1; 5]);
        assert_eq!(&buf[15..], &[2; 10]);
    }

    #[test]
    fn missing_lists_only_unfetched_spans() {
        let mut s = SparseSource::new(1000);
        s.insert(0, vec![0; 100]);
        let want = [
            ByteRange {
                offset: 50,
                len: 20,
            },
            ByteRange {
                offset: 500,
                len: 10,
            },
            ByteRange {
                offset: 505,
                len: 10,
            },
        ];
        assert_eq!(s.missing(&want), vec![(500, 15)]);
    }
}
