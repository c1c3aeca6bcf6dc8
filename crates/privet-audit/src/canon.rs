//! The canonical binary encoding that agreements, log entries and tree heads are hashed and
//! signed in.
//!
//! Deterministic and unambiguous: a domain-separation tag first (which names the structure and
//! its format version), then fields in a fixed order; integers big-endian with a fixed width;
//! strings and byte strings length-prefixed (`u32`); floating-point numbers as their IEEE 754
//! bits (the types that hold them refuse NaN, infinities and negative zero); optional values
//! with a 0/1 presence byte; lists with a `u32` count, and sets in sorted order. TOML layout,
//! key order, comments and JSON spacing therefore never change a hash or a signature.

/// A canonical encoder.
#[derive(Debug)]
pub(crate) struct Canon(Vec<u8>);

impl Canon {
    /// Starts an encoding with its domain-separation tag.
    pub(crate) fn new(tag: &str) -> Canon {
        let mut c = Canon(Vec::with_capacity(256));
        c.str(tag);
        c
    }

    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    pub(crate) fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn f64(&mut self, v: f64) -> &mut Self {
        self.u64(v.to_bits())
    }

    /// Fixed-size bytes (a hash, a key): no length prefix.
    pub(crate) fn fixed(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }

    /// Length-prefixed bytes.
    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.len(v.len());
        self.0.extend_from_slice(v);
        self
    }

    pub(crate) fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// A count (lists, strings). Every count privet encodes is bounded far below `u32::MAX` by
    /// the parsers' limits; a larger one saturates, which the limits make unreachable.
    pub(crate) fn len(&mut self, n: usize) -> &mut Self {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX))
    }

    pub(crate) fn opt<T>(&mut self, v: Option<T>, f: impl FnOnce(&mut Self, T)) -> &mut Self {
        match v {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                f(self, x);
                self
            }
        }
    }

    pub(crate) fn list<T>(
        &mut self,
        items: impl ExactSizeIterator<Item = T>,
        mut f: impl FnMut(&mut Self, T),
    ) -> &mut Self {
        self.len(items.len());
        for x in items {
            f(self, x);
        }
        self
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_length_prefixed_so_fields_cannot_slide() {
        let mut a = Canon::new("t");
        a.str("ab").str("c");
        let mut b = Canon::new("t");
        b.str("a").str("bc");
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn the_tag_separates_domains() {
        let mut a = Canon::new("privet-audit/v1/entry");
        a.u32(1);
        let mut b = Canon::new("privet-audit/v1/tree-head");
        b.u32(1);
        assert_ne!(a.finish(), b.finish());
    }
}
