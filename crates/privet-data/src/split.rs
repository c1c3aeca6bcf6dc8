//! Seeded train/test split.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha20Rng;

use crate::error::DataError;

/// Splits row indices `0..n` into `(train, test)`.
///
/// Exactly: `perm = [0, 1, ..., n-1]` is shuffled in place with [`SliceRandom::shuffle`] (a
/// Fisher-Yates shuffle) driven by `ChaCha20Rng::seed_from_u64(seed)`; with
/// `k = round(n * test_fraction)` (half away from zero), **test** is `perm[..k]` and **train** is
/// `perm[k..]`. Both lists keep the permutation order (they are *not* sorted), so the result is the
/// same on every platform and the train list is already shuffled.
///
/// `test_fraction` must be in `[0, 1)`; anything else (including NaN) is
/// [`DataError::InvalidParameter`].
pub fn train_test_split(
    n: usize,
    test_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    if !(0.0..1.0).contains(&test_fraction) {
        return Err(DataError::InvalidParameter(format!(
            "test_fraction must be in [0, 1), got {test_fraction}"
        )));
    }
    let mut perm: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    perm.shuffle(&mut rng);
    // n * f < n, and round() of it is at most n.
    let k = ((n as f64 * test_fraction).round() as usize).min(n);
    let train = perm.split_off(k);
    Ok((train, perm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_disjoint_covering_and_sized() {
        let (tr, te) = train_test_split(1000, 0.2, 7).unwrap();
        let (tr2, te2) = train_test_split(1000, 0.2, 7).unwrap();
        assert_eq!((&tr, &te), (&tr2, &te2));
        assert_eq!(te.len(), 200);
        assert_eq!(tr.len(), 800);
        let mut all: Vec<usize> = tr.iter().chain(&te).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        let (tr3, _) = train_test_split(1000, 0.2, 8).unwrap();
        assert_ne!(tr, tr3);
        // Permutation order is kept: not sorted.
        assert!(tr.windows(2).any(|w| w[0] > w[1]));
    }

    #[test]
    fn rounding_and_edges() {
        assert_eq!(train_test_split(10, 0.25, 1).unwrap().1.len(), 3); // 2.5 rounds to 3
        assert_eq!(train_test_split(10, 0.0, 1).unwrap().1.len(), 0);
        assert_eq!(train_test_split(0, 0.5, 1).unwrap(), (vec![], vec![]));
        let (tr, te) = train_test_split(1, 0.6, 1).unwrap();
        assert_eq!((tr.len(), te.len()), (0, 1));
        for bad in [1.0, -0.1, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                train_test_split(10, bad, 1),
                Err(DataError::InvalidParameter(_))
            ));
        }
    }

    #[test]
    fn same_prefix_permutation_as_documented() {
        let mut perm: Vec<usize> = (0..50).collect();
        perm.shuffle(&mut ChaCha20Rng::seed_from_u64(3));
        let (tr, te) = train_test_split(50, 0.1, 3).unwrap();
        assert_eq!(te, perm[..5]);
        assert_eq!(tr, perm[5..]);
    }
}
