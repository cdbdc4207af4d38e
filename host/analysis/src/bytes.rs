//! Bounds-checked integer reads from byte slices: `None` when the slice is too short, never a
//! panic. Every parser reads multi-byte fields through these.

fn arr<const N: usize>(b: &[u8], p: usize) -> Option<[u8; N]> {
    b.get(p..p.checked_add(N)?)?.try_into().ok()
}

/// Big-endian u16 at `p`.
pub(crate) fn be16(b: &[u8], p: usize) -> Option<u16> {
    arr(b, p).map(u16::from_be_bytes)
}
/// Big-endian u32 at `p`.
pub(crate) fn be32(b: &[u8], p: usize) -> Option<u32> {
    arr(b, p).map(u32::from_be_bytes)
}
/// Big-endian u64 at `p`.
pub(crate) fn be64(b: &[u8], p: usize) -> Option<u64> {
    arr(b, p).map(u64::from_be_bytes)
}
/// Little-endian u32 at `p`.
pub(crate) fn le32(b: &[u8], p: usize) -> Option<u32> {
    arr(b, p).map(u32::from_le_bytes)
}
/// u16 at `p` in the given byte order.
pub(crate) fn u16_at(b: &[u8], p: usize, le: bool) -> Option<u16> {
    arr(b, p).map(if le {
        u16::from_le_bytes
    } else {
        u16::from_be_bytes
    })
}
/// u32 at `p` in the given byte order.
pub(crate) fn u32_at(b: &[u8], p: usize, le: bool) -> Option<u32> {
    arr(b, p).map(if le {
        u32::from_le_bytes
    } else {
        u32::from_be_bytes
    })
}

/// UTF-16LE text up to the first NUL unit (or the end; an odd last byte is dropped), at most
/// `max_units` units, unpaired surrogates replaced. FlashPix property names and strings and
/// Sigma X3F properties are stored this way.
pub(crate) fn utf16le_to_nul(b: &[u8], max_units: usize) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .filter_map(|c| c.try_into().ok().map(u16::from_le_bytes))
        .take_while(|u| *u != 0)
        .take(max_units)
        .collect();
    String::from_utf16_lossy(&units)
}

#[cfg(test)]
mod tests {
    use super::utf16le_to_nul;

    #[test]
    fn utf16le_stops_at_nul_cap_and_odd_byte() {
        assert_eq!(utf16le_to_nul(b"A\0b\0\0\0C\0", usize::MAX), "Ab");
        assert_eq!(utf16le_to_nul(b"A\0b\0C", usize::MAX), "Ab");
        assert_eq!(utf16le_to_nul(b"A\0b\0c\0", 2), "Ab");
        assert_eq!(utf16le_to_nul(b"\x00\xd8A\0", usize::MAX), "\u{fffd}A");
        assert_eq!(utf16le_to_nul(b"", usize::MAX), "");
    }
}
