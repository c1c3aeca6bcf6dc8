//! The seeds that fix a run.
//!
//! Everything random in a job that is not a secret derives from the job's `[federation] seed`
//! through ChaCha20 streams keyed by (purpose, round, client): the train/test split, the
//! partition, the initial model, client sampling, minibatch shuffles and simulated dropouts. So a
//! seed fixes a run, in the simulation and between real nodes alike, **except** where privacy
//! needs real randomness: DP noise (keys drawn from the operating system) and the secrets of
//! secure aggregation are never derived from the seed, so a DP run's model differs from run to
//! run while its accounting does not.

use privet_ml::Network;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::Job;

/// What a derived seed is for (the ChaCha20 stream it comes from).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A client's minibatch shuffles in a round.
    Shuffle,
    /// Whether a simulated client drops out of a round.
    Dropout,
    /// The initial global model.
    Init,
    /// A simulated client's Ed25519 identity (simulations only: every party lives in one
    /// process there, so these keys protect nothing).
    SimIdentity,
}

impl Purpose {
    fn stream(self) -> u64 {
        match self {
            Purpose::Shuffle => 1,
            Purpose::Dropout => 2,
            Purpose::Init => 3,
            Purpose::SimIdentity => 4,
        }
    }
}

/// Derives an independent 64-bit seed for (purpose, round, client) from the job seed.
pub fn derive_seed(seed: u64, purpose: Purpose, round: u32, client: u32) -> u64 {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream(purpose.stream());
    rng.set_word_pos(((u128::from(round) << 32) | u128::from(client)) << 4);
    rng.random()
}

/// The initial global parameters of a job (seeded).
pub fn initial_params(job: &Job, network: &Network) -> Vec<f32> {
    network.init(derive_seed(job.federation.seed, Purpose::Init, 0, 0))
}

/// The seed of `client`'s minibatch shuffles in `round`.
pub fn client_shuffle_seed(job: &Job, round: u32, client: u32) -> u64 {
    derive_seed(job.federation.seed, Purpose::Shuffle, round, client)
}
