//! Shamir secret sharing of 32-byte secrets as scalars of the Curve25519 group order field,
//! through `vsss-rs` (audited; constant-time field arithmetic from `curve25519-dalek`).
//!
//! A share's x-coordinate is the holder's client id plus one (never zero); only the share
//! value travels, since the holder is known from the protocol.

use curve25519_dalek::scalar::Scalar;
use privet_fl::ClientId;
use vsss_rs::{DefaultShare, IdentifierPrimeField, ReadableShareSet, shamir};
use zeroize::Zeroize;

use crate::SecAggError;
use crate::crypto::{SecretRng, SecretScalar};

type Field = IdentifierPrimeField<Scalar>;
type ScalarShare = DefaultShare<Field, Field>;

fn x_of(holder: ClientId) -> Field {
    IdentifierPrimeField(Scalar::from(u64::from(holder.0) + 1))
}

/// Overwrites the identifiers and values of `shares` with zeros.
fn wipe(shares: &mut [ScalarShare]) {
    for s in shares {
        s.identifier.0.zeroize();
        s.value.0.zeroize();
    }
}

/// Splits `secret` into one share per holder, any `threshold` of which rebuild it (share `i`
/// belongs to `holders[i]`; holders must be distinct).
pub(crate) fn split(
    secret: &SecretScalar,
    threshold: usize,
    holders: &[ClientId],
    rng: &mut SecretRng,
) -> Result<Vec<SecretScalar>, SecAggError> {
    let mut intercept = IdentifierPrimeField(secret.0);
    let result = shamir::split_secret_with_participant_ids_iter::<ScalarShare>(
        threshold,
        holders.len(),
        &intercept,
        &mut *rng,
        holders.iter().map(|&h| x_of(h)),
    );
    intercept.0.zeroize();
    let mut shares =
        result.map_err(|e| SecAggError::Crypto(format!("secret sharing failed: {e:?}")))?;
    let values = shares.iter().map(|s| SecretScalar(s.value.0)).collect();
    wipe(&mut shares);
    Ok(values)
}

/// Rebuilds a secret from `(holder, share value)` pairs by Lagrange interpolation at zero.
///
/// Exactly the shares given are used: with fewer than the threshold the result is garbage
/// (information-theoretically independent of the secret), which callers detect through a
/// commitment.
pub(crate) fn combine(shares: &[(ClientId, &SecretScalar)]) -> Result<SecretScalar, SecAggError> {
    let mut set: Vec<ScalarShare> = shares
        .iter()
        .map(|(holder, value)| DefaultShare {
            identifier: x_of(*holder),
            value: IdentifierPrimeField(value.0),
        })
        .collect();
    let result = set.combine();
    wipe(&mut set);
    let mut secret =
        result.map_err(|e| SecAggError::Crypto(format!("secret reconstruction failed: {e:?}")))?;
    let out = SecretScalar(secret.0);
    secret.0.zeroize();
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;
    use crate::crypto::{fresh_rng, random_scalar};

    fn ids(v: impl IntoIterator<Item = u32>) -> Vec<ClientId> {
        v.into_iter().map(ClientId).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any t of n shares rebuild the secret; t - 1 of them give something else.
        #[test]
        fn any_t_of_n_rebuild_and_t_minus_one_do_not(
            n in 2usize..20,
            t_frac in 0.0f64..1.0,
            seed in any::<u64>(),
        ) {
            let t = 2 + ((n - 2) as f64 * t_frac) as usize;
            let mut rng = fresh_rng().unwrap();
            let secret = random_scalar(&mut rng);
            // Non-contiguous holder ids, as in a real round.
            let holders = ids((0..n as u32).map(|i| i * 7 + 3));
            let shares = split(&secret, t, &holders, &mut rng).unwrap();
            prop_assert_eq!(shares.len(), n);
            // A pseudo-random subset of size t, and one of size t - 1.
            let mut order: Vec<usize> = (0..n).collect();
            let mut s = seed;
            for i in (1..n).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                order.swap(i, (s >> 33) as usize % (i + 1));
            }
            let pick = |m: usize| -> Vec<(ClientId, &SecretScalar)> {
                order[..m].iter().map(|&i| (holders[i], &shares[i])).collect()
            };
            prop_assert_eq!(combine(&pick(t)).unwrap().0, secret.0);
            if t >= 3 {
                prop_assert_ne!(combine(&pick(t - 1)).unwrap().0, secret.0);
            }
            // All n shares are consistent too.
            prop_assert_eq!(combine(&pick(n)).unwrap().0, secret.0);
        }
    }

    #[test]
    fn a_wrong_share_gives_a_wrong_secret() {
        let mut rng = fresh_rng().unwrap();
        let secret = random_scalar(&mut rng);
        let holders = ids(1..=5);
        let mut shares = split(&secret, 3, &holders, &mut rng).unwrap();
        shares[1] = SecretScalar(shares[1].0 + Scalar::ONE);
        let picked: Vec<_> = (0..3).map(|i| (holders[i], &shares[i])).collect();
        assert_ne!(combine(&picked).unwrap().0, secret.0);
    }

    #[test]
    fn degenerate_requests_are_errors_not_panics() {
        let mut rng = fresh_rng().unwrap();
        let secret = random_scalar(&mut rng);
        // Threshold above the number of holders, threshold 1, duplicate holders.
        assert!(split(&secret, 4, &ids(1..=3), &mut rng).is_err());
        assert!(split(&secret, 1, &ids(1..=3), &mut rng).is_err());
        let shares = split(&secret, 2, &ids(1..=3), &mut rng).unwrap();
        assert!(combine(&[(ClientId(1), &shares[0])]).is_err());
        assert!(combine(&[(ClientId(1), &shares[0]), (ClientId(1), &shares[1])]).is_err());
    }
}
