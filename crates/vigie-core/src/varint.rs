//! The compact integers of Vigie's binary encodings (duration sketches, log blocks): LEB128
//! varints, with zigzag for signed values so small negatives stay small.

/// A signed value as an unsigned one whose size follows its magnitude: 0, -1, 1, -2 → 0, 1, 2, 3.
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag`].
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends `v`, seven bits a byte, low first.
pub fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads one value from the front of `input` and moves past it; `None` when the input ends
/// first or the value runs past 64 bits (a corrupt encoding).
pub fn take(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_bad_input_is_refused() {
        for v in [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN, 1 << 40] {
            let mut buf = Vec::new();
            put(&mut buf, zigzag(v));
            let mut input = buf.as_slice();
            assert_eq!(unzigzag(take(&mut input).unwrap()), v);
            assert!(input.is_empty());
        }
        let mut small = Vec::new();
        put(&mut small, 300);
        assert_eq!(small, [0xac, 0x02]);
        assert_eq!(take(&mut &[0x80u8][..]), None, "cut short");
        assert_eq!(take(&mut &[0xffu8; 11][..]), None, "past 64 bits");
    }
}
