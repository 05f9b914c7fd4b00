//! FNV-1a, 64 bits: the one short, stable, non-cryptographic hash that
//! ids, file keys, shortened names and list cursors are made with. It is
//! part of what users see (ids, names), so it must never change.

/// An FNV-1a hasher.
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn bytes(&mut self, b: &[u8]) -> &mut Fnv {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        self
    }

    /// `b` prefixed with its length, so that ("ab", "c") and ("a", "bc")
    /// differ.
    pub fn field(&mut self, b: &[u8]) -> &mut Fnv {
        self.bytes(&(b.len() as u64).to_le_bytes());
        self.bytes(b)
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// The hash of `b`.
pub fn fnv1a(b: &[u8]) -> u64 {
    Fnv::default().bytes(b).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_never_change() {
        // The published FNV-1a 64 test vectors.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        let mut f = Fnv::default();
        f.field(b"ab").field(b"c");
        let mut g = Fnv::default();
        g.field(b"a").field(b"bc");
        assert_ne!(f.finish(), g.finish());
    }
}
