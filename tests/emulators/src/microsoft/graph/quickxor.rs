//! OneDrive's `quickXorHash`: the content hash SharePoint and OneDrive for Business return in
//! `file.hashes` (reference §2.2).
//!
//! The algorithm XORs each input byte into a 160-bit register at a bit offset that advances by
//! 11 per byte (wrapping at 160), then XORs the input length (64-bit little-endian) into the last
//! eight bytes and base64-encodes the 20 bytes. Clients only compare these strings, so what
//! matters to a plugin is that the value changes exactly when the content does.

use base64::Engine as _;

const WIDTH_BITS: usize = 160;
const SHIFT_BITS: usize = 11;

/// `quickXorHash` of `data`, base64 (standard alphabet, padded) as Graph returns it.
pub(crate) fn quick_xor_hash(data: &[u8]) -> String {
    let mut register = [0u8; WIDTH_BITS / 8];
    let mut offset = 0usize;
    for &byte in data {
        for bit in 0..8 {
            if byte & (1 << bit) != 0 {
                let at = (offset + bit) % WIDTH_BITS;
                if let Some(cell) = register.get_mut(at / 8) {
                    *cell ^= 1 << (at % 8);
                }
            }
        }
        offset = (offset + SHIFT_BITS) % WIDTH_BITS;
    }
    let length = (data.len() as u64).to_le_bytes();
    let tail = register.len() - length.len();
    for (i, b) in length.iter().enumerate() {
        if let Some(cell) = register.get_mut(tail + i) {
            *cell ^= b;
        }
    }
    base64::engine::general_purpose::STANDARD.encode(register)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_of_nothing_is_twenty_zero_bytes() {
        assert_eq!(quick_xor_hash(b""), "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    }

    #[test]
    fn one_changed_byte_changes_the_hash() {
        let a = quick_xor_hash(b"hello world");
        let b = quick_xor_hash(b"hello worle");
        assert_ne!(a, b);
        assert_eq!(a, quick_xor_hash(b"hello world"));
    }
}
