//! The neighbourhood graph of a round: a Harary graph `H(n, k)` over a random ordering of the
//! clients, or the complete graph.
//!
//! The ordering is derived from a 32-byte seed that the coordinator draws and sends with the
//! member list, so every client recomputes its own neighbours instead of trusting a list: a
//! coordinator that sends the same seed and members to everyone cannot give two clients
//! inconsistent views of the graph.

use chacha20::ChaCha20Rng;
use hkdf::Hkdf;
use privet_fl::ClientId;
use rand_core::{Rng, SeedableRng};
use sha2::Sha256;

use crate::SecAggError;
use crate::crypto::SALT;

/// The graph of one round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Graph {
    /// Members, sorted ascending.
    members: Vec<ClientId>,
    /// `position[i]`: ring position of `members[i]`.
    position: Vec<usize>,
    /// `ring[p]`: index into `members` of the client at ring position `p`.
    ring: Vec<usize>,
    k: usize,
}

impl Graph {
    /// The graph of degree `k` over `members` (sorted, distinct, at least 3) for `round`.
    /// `k ≥ n - 1` gives the complete graph; otherwise `k` must be even.
    pub(crate) fn new(
        seed: &[u8; 32],
        round: u32,
        members: &[ClientId],
        k: usize,
    ) -> Result<Self, SecAggError> {
        let n = members.len();
        if n < 3 || !members.windows(2).all(|w| w[0] < w[1]) {
            return Err(SecAggError::Protocol(
                "graph members must be at least 3 distinct clients in order".into(),
            ));
        }
        if k < n - 1 && (!k.is_multiple_of(2) || k < 2) {
            return Err(SecAggError::Protocol(format!(
                "degree {k} is not an even number of at least 2"
            )));
        }
        let n_bytes = u64::try_from(n).unwrap_or(u64::MAX).to_le_bytes();
        let hk = Hkdf::<Sha256>::new(Some(SALT), seed);
        let mut key = [0u8; 32];
        hk.expand_multi_info(&[b"graph", &round.to_le_bytes(), &n_bytes], &mut key)
            .map_err(|_| SecAggError::Crypto("HKDF output length".into()))?;
        let mut rng = ChaCha20Rng::from_seed(key);
        // Fisher-Yates with unbiased (rejection-sampled) indices.
        let mut ring: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = uniform_below(&mut rng, i as u64 + 1) as usize;
            ring.swap(i, j);
        }
        let mut position = vec![0; n];
        for (p, &m) in ring.iter().enumerate() {
            if let Some(slot) = position.get_mut(m) {
                *slot = p;
            }
        }
        Ok(Graph {
            members: members.to_vec(),
            position,
            ring,
            k: k.min(n - 1),
        })
    }

    /// Whether every client neighbours every other.
    pub(crate) fn is_complete(&self) -> bool {
        self.k >= self.members.len() - 1
    }

    /// The neighbours of `client`, sorted; `None` if it is not a member.
    pub(crate) fn neighbours(&self, client: ClientId) -> Option<Vec<ClientId>> {
        let idx = self.members.binary_search(&client).ok()?;
        if self.is_complete() {
            return Some(
                self.members
                    .iter()
                    .copied()
                    .filter(|&c| c != client)
                    .collect(),
            );
        }
        let n = self.members.len();
        let p = *self.position.get(idx)?;
        let half = self.k / 2;
        let mut out: Vec<ClientId> = (1..=half)
            .flat_map(|d| [(p + d) % n, (p + n - d) % n])
            .filter_map(|q| self.ring.get(q).and_then(|&m| self.members.get(m)).copied())
            .collect();
        out.sort_unstable();
        out.dedup();
        Some(out)
    }

    /// Neighbour lists of every member, in member order.
    pub(crate) fn all_neighbours(&self) -> Vec<(ClientId, Vec<ClientId>)> {
        self.members
            .iter()
            .map(|&c| (c, self.neighbours(c).unwrap_or_default()))
            .collect()
    }
}

/// A uniform integer in `0..bound` (`bound ≥ 1`) by rejection sampling.
fn uniform_below(rng: &mut ChaCha20Rng, bound: u64) -> u64 {
    let zone = u64::MAX - (u64::MAX % bound);
    loop {
        let x = rng.next_u64();
        if x < zone {
            return x % bound;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn members(n: u32) -> Vec<ClientId> {
        (0..n).map(|i| ClientId(i * 3 + 1)).collect()
    }

    #[test]
    fn harary_graphs_are_k_regular_and_symmetric() {
        for (n, k) in [(5u32, 2usize), (10, 4), (31, 6), (100, 22), (101, 30)] {
            let m = members(n);
            let g = Graph::new(&[9; 32], 3, &m, k).unwrap();
            for (c, nb) in g.all_neighbours() {
                assert_eq!(nb.len(), k, "n={n} k={k}");
                assert!(!nb.contains(&c));
                for v in nb {
                    assert!(g.neighbours(v).unwrap().contains(&c));
                }
            }
        }
    }

    #[test]
    fn the_graph_is_a_function_of_seed_round_and_members() {
        let m = members(40);
        let a = Graph::new(&[1; 32], 1, &m, 8).unwrap();
        assert_eq!(a, Graph::new(&[1; 32], 1, &m, 8).unwrap());
        assert_ne!(a, Graph::new(&[2; 32], 1, &m, 8).unwrap());
        assert_ne!(a, Graph::new(&[1; 32], 2, &m, 8).unwrap());
    }

    #[test]
    fn complete_graphs_and_bad_inputs() {
        let m = members(6);
        let g = Graph::new(&[0; 32], 1, &m, 5).unwrap();
        assert!(g.is_complete());
        assert_eq!(g.neighbours(m[0]).unwrap().len(), 5);
        assert_eq!(g.neighbours(ClientId(1000)), None);
        assert!(Graph::new(&[0; 32], 1, &m, 3).is_err());
        assert!(Graph::new(&[0; 32], 1, &m[..2], 1).is_err());
        let unsorted = vec![ClientId(2), ClientId(1), ClientId(3)];
        assert!(Graph::new(&[0; 32], 1, &unsorted, 2).is_err());
    }
}
