//! Parameter sets: ring degree, ciphertext primes, special primes and scale.
//!
//! Every parameter set built by the safe constructors meets 128-bit classical security by the
//! HomomorphicEncryption.org standard table (ternary secret, error of standard deviation 3.2):
//! N = 2^13, 2^14, 2^15 with log2(QP) at most 218, 438, 881 bits, special primes included.
//! Anything else is refused unless built through [`CkksParameters::hazmat_unchecked`], whose name
//! and marker argument say what it is.

use std::fmt;
use std::str::FromStr;

use fhe_util::is_prime;
use sha2::{Digest, Sha256};

use crate::error::{HeError, Result};

/// The HomomorphicEncryption.org table (classical, 128-bit, ternary secret): (log2 N, max log2 QP).
pub const SECURITY_TABLE_128: [(u32, u32); 3] = [(13, 218), (14, 438), (15, 881)];

/// Smallest and largest prime sizes accepted (SEAL's limits; fhe-math allows up to 62 bits).
pub const PRIME_BITS: std::ops::RangeInclusive<u32> = 20..=60;

/// Named parameter sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParameterSetName {
    /// N = 8192, q = [60, 40, 40], P = [60], scale 2^40: depth 2 (200 bits; TenSEAL's usual set).
    N13Depth2,
    /// N = 8192, q = [50, 34, 34, 34], P = [50], scale 2^34: depth 3 (202 bits).
    N13Depth3,
    /// N = 16384, q = [60, 40 x 6], P = [60, 60], scale 2^40: depth 6 (420 bits).
    N14Depth6,
    /// N = 32768, q = [60, 40 x 15], P = [60, 60, 60], scale 2^40: depth 15 (840 bits).
    N15Depth15,
}

impl ParameterSetName {
    /// All named sets.
    pub const ALL: [ParameterSetName; 4] = [
        ParameterSetName::N13Depth2,
        ParameterSetName::N13Depth3,
        ParameterSetName::N14Depth6,
        ParameterSetName::N15Depth15,
    ];

    /// The set's name as written in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            ParameterSetName::N13Depth2 => "n13-d2",
            ParameterSetName::N13Depth3 => "n13-d3",
            ParameterSetName::N14Depth6 => "n14-d6",
            ParameterSetName::N15Depth15 => "n15-d15",
        }
    }
}

impl fmt::Display for ParameterSetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ParameterSetName {
    type Err = HeError;
    fn from_str(s: &str) -> Result<Self> {
        ParameterSetName::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| {
                HeError::InvalidParameters(format!(
                    "unknown parameter set '{s}' (known: n13-d2, n13-d3, n14-d6, n15-d15)"
                ))
            })
    }
}

/// What a circuit needs: used by [`CkksParameters::for_circuit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitRequirements {
    /// Number of rescales (multiplicative depth).
    pub depth: u32,
    /// log2 of the scale: bits of fractional precision carried (before noise).
    pub scale_bits: u32,
    /// Bits above the scale that the largest intermediate or final value may need.
    pub integer_bits: u32,
}

/// Marker argument of [`CkksParameters::hazmat_unchecked`]: the caller accepts parameters that the
/// security table does not cover (tests with tiny rings, experiments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hazmat {
    /// The parameters may be insecure; never use them for real data.
    InsecureForTestingOnly,
}

/// A CKKS parameter set: ring degree N = 2^log_n, ciphertext primes q_0..q_L (q_0 first, each
/// rescale drops the last), special primes p_0..p_{k-1} for key switching, and the default scale.
#[derive(Clone, PartialEq)]
pub struct CkksParameters {
    log_n: u32,
    q: Vec<u64>,
    p: Vec<u64>,
    scale_bits: u32,
    hazmat: bool,
}

impl fmt::Debug for CkksParameters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CkksParameters")
            .field("n", &self.degree())
            .field("q_bits", &self.q_bits())
            .field("p_bits", &self.p_bits())
            .field("scale_bits", &self.scale_bits)
            .field("hazmat", &self.hazmat)
            .finish()
    }
}

fn bit_len(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// SEAL's `CoeffModulus::Create`: for each bit size, the largest primes below 2^bits congruent to
/// 1 mod 2N, handed out in increasing order along the list (so equal bit sizes give the very
/// primes SEAL and TenSEAL use).
pub fn generate_primes(n: usize, bit_sizes: &[u32]) -> Result<Vec<u64>> {
    let factor = 2 * n as u64;
    let mut out = vec![0u64; bit_sizes.len()];
    let mut sizes: Vec<u32> = bit_sizes.to_vec();
    sizes.sort_unstable();
    sizes.dedup();
    for bits in sizes {
        if !PRIME_BITS.contains(&bits) {
            return Err(HeError::InvalidParameters(format!(
                "prime size {bits} bits is outside {}..={}",
                PRIME_BITS.start(),
                PRIME_BITS.end()
            )));
        }
        let count = bit_sizes.iter().filter(|&&b| b == bits).count();
        let mut found = Vec::with_capacity(count);
        let lower = 1u64 << (bits - 1);
        let mut value = (1u64 << bits) - factor + 1;
        while found.len() < count && value > lower {
            if is_prime(value) {
                found.push(value);
            }
            value -= factor;
        }
        if found.len() < count {
            return Err(HeError::InvalidParameters(format!(
                "not enough {bits}-bit primes congruent to 1 mod {factor}"
            )));
        }
        let mut it = found.into_iter().rev();
        for (slot, &b) in out.iter_mut().zip(bit_sizes) {
            if b == bits {
                *slot = it.next().unwrap_or_default();
            }
        }
    }
    Ok(out)
}

impl CkksParameters {
    /// A named parameter set.
    pub fn named(name: ParameterSetName) -> Self {
        let (log_n, q, p, scale): (u32, Vec<u32>, Vec<u32>, u32) = match name {
            ParameterSetName::N13Depth2 => (13, vec![60, 40, 40], vec![60], 40),
            ParameterSetName::N13Depth3 => (13, vec![50, 34, 34, 34], vec![50], 34),
            ParameterSetName::N14Depth6 => {
                let mut q = vec![60];
                q.extend([40; 6]);
                (14, q, vec![60, 60], 40)
            }
            ParameterSetName::N15Depth15 => {
                let mut q = vec![60];
                q.extend([40; 15]);
                (15, q, vec![60, 60, 60], 40)
            }
        };
        // The named sets are checked by a unit test; failure here would be a bug in this table.
        Self::from_bit_sizes(log_n, &q, &p, scale)
            .unwrap_or_else(|e| unreachable!("named parameter set {name} is invalid: {e}"))
    }

    /// Parameters from prime bit sizes (primes chosen as SEAL does), checked against the
    /// security table.
    pub fn from_bit_sizes(
        log_n: u32,
        q_bits: &[u32],
        p_bits: &[u32],
        scale_bits: u32,
    ) -> Result<Self> {
        let params = Self::build(log_n, q_bits, p_bits, scale_bits, false)?;
        params.check_security()?;
        Ok(params)
    }

    /// Parameters from explicit primes, checked against the security table.
    pub fn from_primes(log_n: u32, q: Vec<u64>, p: Vec<u64>, scale_bits: u32) -> Result<Self> {
        let params = Self {
            log_n,
            q,
            p,
            scale_bits,
            hazmat: false,
        };
        params.validate()?;
        params.check_security()?;
        Ok(params)
    }

    /// Parameters without the security check: for tests with tiny rings and for experiments.
    /// The result says `is_hazmat() == true`, and that is part of its fingerprint, so objects made
    /// under it are never accepted by a context built with checked parameters.
    pub fn hazmat_unchecked(
        log_n: u32,
        q_bits: &[u32],
        p_bits: &[u32],
        scale_bits: u32,
        _ack: Hazmat,
    ) -> Result<Self> {
        Self::build(log_n, q_bits, p_bits, scale_bits, true)
    }

    /// The smallest secure parameters for a circuit: q_0 holds scale plus integer bits, one
    /// prime of `scale_bits` per level, and as many 60-bit special primes as still fit (more
    /// special primes mean fewer key-switching digits, so faster rotations and relinearization).
    pub fn for_circuit(req: CircuitRequirements) -> Result<Self> {
        let q0 = req.scale_bits + req.integer_bits;
        if !PRIME_BITS.contains(&q0) || !PRIME_BITS.contains(&req.scale_bits) {
            return Err(HeError::InvalidParameters(format!(
                "scale {} bits + integer {} bits must give primes of {}..={} bits",
                req.scale_bits,
                req.integer_bits,
                PRIME_BITS.start(),
                PRIME_BITS.end()
            )));
        }
        let mut q_bits = vec![q0];
        q_bits.extend(std::iter::repeat_n(req.scale_bits, req.depth as usize));
        let special = q0.max(req.scale_bits).max(40);
        let q_total: u32 = q_bits.iter().sum();
        for (log_n, max) in SECURITY_TABLE_128 {
            let limbs = q_bits.len() as u32;
            // Largest number of special primes that fits, at least one, at most one per q prime.
            let alpha = (1..=limbs).rev().find(|a| q_total + a * special <= max);
            if let Some(alpha) = alpha {
                let p_bits = vec![special; alpha as usize];
                return Self::from_bit_sizes(log_n, &q_bits, &p_bits, req.scale_bits);
            }
        }
        Err(HeError::InvalidParameters(format!(
            "depth {} at {} scale bits needs more than the 881 bits N = 2^15 allows",
            req.depth, req.scale_bits
        )))
    }

    fn build(
        log_n: u32,
        q_bits: &[u32],
        p_bits: &[u32],
        scale_bits: u32,
        hazmat: bool,
    ) -> Result<Self> {
        if !(3..=17).contains(&log_n) {
            return Err(HeError::InvalidParameters(format!(
                "log2 N = {log_n} is outside 3..=17"
            )));
        }
        let mut all = q_bits.to_vec();
        all.extend_from_slice(p_bits);
        let primes = generate_primes(1usize << log_n, &all)?;
        let (q, p) = primes.split_at(q_bits.len());
        let params = Self {
            log_n,
            q: q.to_vec(),
            p: p.to_vec(),
            scale_bits,
            hazmat,
        };
        params.validate()?;
        Ok(params)
    }

    fn validate(&self) -> Result<()> {
        if !(3..=17).contains(&self.log_n) {
            return Err(HeError::InvalidParameters(format!(
                "log2 N = {} is outside 3..=17",
                self.log_n
            )));
        }
        if self.q.is_empty() || self.p.is_empty() {
            return Err(HeError::InvalidParameters(
                "need at least one ciphertext prime and one special prime".into(),
            ));
        }
        if self.p.len() > self.q.len() {
            return Err(HeError::InvalidParameters(
                "more special primes than ciphertext primes".into(),
            ));
        }
        if !(10..=60).contains(&self.scale_bits) {
            return Err(HeError::InvalidParameters(format!(
                "scale of 2^{} is outside 2^10..=2^60",
                self.scale_bits
            )));
        }
        let two_n = 2u64 << self.log_n;
        let mut all: Vec<u64> = self.q.iter().chain(&self.p).copied().collect();
        for &m in &all {
            if !PRIME_BITS.contains(&bit_len(m)) || m % two_n != 1 || !is_prime(m) {
                return Err(HeError::InvalidParameters(format!(
                    "{m} is not a {}..={}-bit prime congruent to 1 mod 2N",
                    PRIME_BITS.start(),
                    PRIME_BITS.end()
                )));
            }
        }
        all.sort_unstable();
        all.dedup();
        if all.len() != self.q.len() + self.p.len() {
            return Err(HeError::InvalidParameters("primes must be distinct".into()));
        }
        // Key switching divides by P: the special primes must cover the largest digit.
        let max_q = self.q.iter().map(|&x| bit_len(x)).max().unwrap_or(0);
        let p_total: u32 = self.p.iter().map(|&x| bit_len(x)).sum();
        let digit_bits: u32 = {
            let alpha = self.p.len();
            self.q
                .chunks(alpha)
                .map(|c| c.iter().map(|&x| bit_len(x)).sum::<u32>())
                .max()
                .unwrap_or(0)
        };
        if p_total + 1 < digit_bits || p_total < max_q {
            return Err(HeError::InvalidParameters(format!(
                "special primes ({p_total} bits) must be at least as large as each key-switching \
                 digit ({digit_bits} bits)"
            )));
        }
        Ok(())
    }

    fn check_security(&self) -> Result<()> {
        let log_qp = self.log_qp();
        let max = SECURITY_TABLE_128
            .iter()
            .find(|(l, _)| *l == self.log_n)
            .map(|(_, m)| *m)
            .unwrap_or(0);
        if log_qp > max {
            return Err(HeError::InsecureParameters {
                n: self.degree(),
                log_qp,
                max_log_qp: max,
            });
        }
        Ok(())
    }

    /// Ring degree N.
    pub fn degree(&self) -> usize {
        1 << self.log_n
    }
    /// log2 N.
    pub fn log_degree(&self) -> u32 {
        self.log_n
    }
    /// Number of complex slots, N/2.
    pub fn slots(&self) -> usize {
        self.degree() / 2
    }
    /// Ciphertext primes q_0..q_L.
    pub fn q(&self) -> &[u64] {
        &self.q
    }
    /// Special primes used by key switching.
    pub fn p(&self) -> &[u64] {
        &self.p
    }
    /// The top level L (number of rescales available).
    pub fn max_level(&self) -> usize {
        self.q.len() - 1
    }
    /// Bit sizes of the ciphertext primes.
    pub fn q_bits(&self) -> Vec<u32> {
        self.q.iter().map(|&x| bit_len(x)).collect()
    }
    /// Bit sizes of the special primes.
    pub fn p_bits(&self) -> Vec<u32> {
        self.p.iter().map(|&x| bit_len(x)).collect()
    }
    /// Total bits of all moduli (what the security table bounds).
    pub fn log_qp(&self) -> u32 {
        self.q.iter().chain(&self.p).map(|&x| bit_len(x)).sum()
    }
    /// The default scale Δ = 2^scale_bits.
    pub fn default_scale(&self) -> f64 {
        (self.scale_bits as f64).exp2()
    }
    /// log2 of the default scale.
    pub fn scale_bits(&self) -> u32 {
        self.scale_bits
    }
    /// Whether these parameters skipped the security check.
    pub fn is_hazmat(&self) -> bool {
        self.hazmat
    }

    /// A 16-byte fingerprint of everything that makes objects compatible (degree, primes,
    /// scale, hazmat flag); serialized objects carry it.
    pub fn fingerprint(&self) -> [u8; 16] {
        let mut h = Sha256::new();
        h.update(b"privet-he/ckks-params/v1");
        h.update(self.log_n.to_le_bytes());
        h.update((self.q.len() as u32).to_le_bytes());
        for q in &self.q {
            h.update(q.to_le_bytes());
        }
        h.update((self.p.len() as u32).to_le_bytes());
        for p in &self.p {
            h.update(p.to_le_bytes());
        }
        h.update(self.scale_bits.to_le_bytes());
        h.update([self.hazmat as u8]);
        let d = h.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&d[..16]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_sets_are_secure_and_valid() {
        for name in ParameterSetName::ALL {
            let p = CkksParameters::named(name);
            let max = SECURITY_TABLE_128
                .iter()
                .find(|(l, _)| *l == p.log_degree())
                .map(|x| x.1);
            assert!(
                p.log_qp() <= max.unwrap_or(0),
                "{name}: {} bits",
                p.log_qp()
            );
            assert!(!p.is_hazmat());
            assert_eq!(name.as_str().parse::<ParameterSetName>(), Ok(name));
        }
        assert!("n12-d1".parse::<ParameterSetName>().is_err());
    }

    #[test]
    fn primes_match_seal_create() {
        // Printed by TenSEAL 0.3.18 (SEAL 4.x):
        // [m.value() for m in sealapi.CoeffModulus.Create(8192, [60, 40, 40, 60])]
        let primes = generate_primes(8192, &[60, 40, 40, 60]).unwrap_or_default();
        assert_eq!(
            primes,
            vec![
                1152921504606748673,
                1099510890497,
                1099511480321,
                1152921504606830593
            ]
        );
        // sealapi.CoeffModulus.Create(16384, [60] + [40] * 6 + [60, 60])
        let mut sizes = vec![60];
        sizes.extend([40; 6]);
        sizes.extend([60, 60]);
        let primes = generate_primes(16384, &sizes).unwrap_or_default();
        assert_eq!(
            primes,
            vec![
                1152921504606584833,
                1099505827841,
                1099506352129,
                1099506515969,
                1099507695617,
                1099508121601,
                1099510054913,
                1152921504606683137,
                1152921504606748673
            ]
        );
    }

    #[test]
    fn insecure_parameters_are_refused() {
        // 8192 with 4 x 60 bits = 240 > 218.
        let e = CkksParameters::from_bit_sizes(13, &[60, 60, 60], &[60], 40);
        assert!(matches!(
            e,
            Err(HeError::InsecureParameters {
                log_qp: 240,
                max_log_qp: 218,
                ..
            })
        ));
        // N = 4096 is outside the table this crate accepts.
        let e = CkksParameters::from_bit_sizes(12, &[30, 30], &[30], 25);
        assert!(matches!(e, Err(HeError::InsecureParameters { .. })));
        // ...unless the caller says hazmat.
        let p = CkksParameters::hazmat_unchecked(
            12,
            &[30, 30],
            &[30],
            25,
            Hazmat::InsecureForTestingOnly,
        );
        assert!(p.map(|p| p.is_hazmat()).unwrap_or(false));
    }

    #[test]
    fn special_primes_must_cover_digits() {
        let e = CkksParameters::from_bit_sizes(13, &[60, 40, 40], &[30], 40);
        assert!(matches!(e, Err(HeError::InvalidParameters(_))));
    }

    #[test]
    fn for_circuit_picks_smallest_ring() {
        let p = CkksParameters::for_circuit(CircuitRequirements {
            depth: 2,
            scale_bits: 40,
            integer_bits: 20,
        });
        let p = p.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.degree(), 8192);
        assert_eq!(p.q_bits(), vec![60, 40, 40]);
        // 60 + 7 x 40 + 60 = 400 fits 2^14; depth 8 (440 bits) does not.
        let p = CkksParameters::for_circuit(CircuitRequirements {
            depth: 7,
            scale_bits: 40,
            integer_bits: 20,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.degree(), 16384);
        let p8 = CkksParameters::for_circuit(CircuitRequirements {
            depth: 8,
            scale_bits: 40,
            integer_bits: 20,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p8.degree(), 32768);
        assert!(p.log_qp() <= 438);
        assert!(!p.p().is_empty());
        let e = CkksParameters::for_circuit(CircuitRequirements {
            depth: 30,
            scale_bits: 40,
            integer_bits: 20,
        });
        assert!(e.is_err());
    }

    #[test]
    fn fingerprints_differ() {
        let a = CkksParameters::named(ParameterSetName::N13Depth2);
        let b = CkksParameters::named(ParameterSetName::N13Depth3);
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
    }
}
