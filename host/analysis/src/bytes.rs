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
