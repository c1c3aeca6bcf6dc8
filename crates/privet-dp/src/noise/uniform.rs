//! Exact uniform integers from a random-bit source, and the 256-bit unsigned arithmetic the
//! Bernoulli factories need.
//!
//! Every draw is exact: Lemire's multiply-and-reject for bounds below `2^64` ("Fast Random
//! Integer Generation in an Interval", ACM TOMACS 2019), and masked rejection above. No floating
//! point is involved.

use rand_core::RngCore;

/// A uniform integer in `[0, n)` for `n >= 1` (Lemire's method, exact).
#[inline]
pub(crate) fn below_u64<R: RngCore + ?Sized>(rng: &mut R, n: u64) -> u64 {
    debug_assert!(n >= 1);
    let mut m = u128::from(rng.next_u64()) * u128::from(n);
    let mut low = m as u64;
    if low < n {
        let threshold = n.wrapping_neg() % n;
        while low < threshold {
            m = u128::from(rng.next_u64()) * u128::from(n);
            low = m as u64;
        }
    }
    (m >> 64) as u64
}

/// A 256-bit unsigned integer, `hi * 2^128 + lo`. Field order makes the derived ordering
/// numeric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct U256 {
    hi: u128,
    lo: u128,
}

impl U256 {
    pub(crate) fn from_u128(v: u128) -> Self {
        U256 { hi: 0, lo: v }
    }

    /// The full product of two 128-bit numbers.
    pub(crate) fn mul(a: u128, b: u128) -> Self {
        let (a1, a0) = (a >> 64, a & u128::from(u64::MAX));
        let (b1, b0) = (b >> 64, b & u128::from(u64::MAX));
        let p00 = a0 * b0;
        let p01 = a0 * b1;
        let p10 = a1 * b0;
        let p11 = a1 * b1;
        let mask = u128::from(u64::MAX);
        let mid = (p00 >> 64) + (p01 & mask) + (p10 & mask);
        let lo = (p00 & mask) | (mid << 64);
        let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
        U256 { hi, lo }
    }

    /// `self - other`, assuming `self >= other`.
    pub(crate) fn sub(self, other: Self) -> Self {
        let (lo, borrow) = self.lo.overflowing_sub(other.lo);
        let hi = self.hi - other.hi - u128::from(borrow);
        U256 { hi, lo }
    }

    /// The value if it fits in 128 bits.
    pub(crate) fn to_u128(self) -> Option<u128> {
        (self.hi == 0).then_some(self.lo)
    }

    fn bits(self) -> u32 {
        if self.hi != 0 {
            256 - self.hi.leading_zeros()
        } else {
            128 - self.lo.leading_zeros()
        }
    }
}

fn random_u128<R: RngCore + ?Sized>(rng: &mut R) -> u128 {
    (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64())
}

/// A uniform integer in `[0, n)` for `n >= 1` (exact).
pub(crate) fn below_u256<R: RngCore + ?Sized>(rng: &mut R, n: U256) -> U256 {
    if let Some(small) = n.to_u128()
        && let Ok(n64) = u64::try_from(small)
    {
        return U256::from_u128(u128::from(below_u64(rng, n64)));
    }
    let bits = n.bits();
    loop {
        let candidate = if bits <= 128 {
            let mask = if bits == 128 {
                u128::MAX
            } else {
                (1u128 << bits) - 1
            };
            U256::from_u128(random_u128(rng) & mask)
        } else {
            let hb = bits - 128;
            let mask = if hb == 128 {
                u128::MAX
            } else {
                (1u128 << hb) - 1
            };
            let hi = random_u128(rng) & mask;
            let lo = random_u128(rng);
            U256 { hi, lo }
        };
        if candidate < n {
            return candidate;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn products_are_exact() {
        let a = u128::MAX;
        let p = U256::mul(a, a);
        // (2^128 - 1)^2 = 2^256 - 2^129 + 1
        assert_eq!(p.hi, u128::MAX - 1);
        assert_eq!(p.lo, 1);
        let q = U256::mul(1u128 << 100, 1u128 << 60);
        assert_eq!(q, U256 { hi: 1 << 32, lo: 0 });
        assert_eq!(U256::mul(12345, 678).to_u128(), Some(12345 * 678));
        assert_eq!(p.sub(p), U256::from_u128(0));
        assert_eq!(
            U256 { hi: 1, lo: 0 }.sub(U256::from_u128(1)),
            U256::from_u128(u128::MAX)
        );
    }

    #[test]
    fn draws_stay_below_and_cover_the_range() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let mut seen = [0u32; 6];
        for _ in 0..6000 {
            seen[below_u64(&mut rng, 6) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| (850..1150).contains(&c)), "{seen:?}");
        let big = U256 { hi: 3, lo: 17 };
        let mut high_half = 0;
        for _ in 0..1000 {
            let x = below_u256(&mut rng, big);
            assert!(x < big);
            if x.hi >= 2 {
                high_half += 1;
            }
        }
        // P(hi >= 2) is about 1/3.
        assert!((250..420).contains(&high_half), "{high_half}");
    }
}
