//! Prints a digest (SHA-256 of the serialized outputs) of each evaluator operation for fixed
//! seeds: a check that an optimization leaves every result bit-identical.
//!
//! `cargo run --release -p privet-he --example he_digest -- LOG_N BITS,BITS,... [SPECIAL]`
//! (the last SPECIAL bit sizes, 1 by default, are the special primes).
mod common;

use std::sync::Arc;

use privet_he::{
    Ciphertext, CkksContext, CkksParameters, Encoder, EvaluationKeyConfig, Evaluator, SecretKey,
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (log_n, bits) = common::ring(&args, 1)?;
    let special: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let (q, p) = bits.split_at(bits.len().saturating_sub(special));
    let ctx = CkksContext::new(CkksParameters::from_bit_sizes(log_n, q, p, 40)?)?;
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let sk = SecretKey::generate(&ctx, &mut rng);
    let pk = sk.public_key(&mut rng);
    let keys = sk.evaluation_keys(
        &EvaluationKeyConfig {
            relinearization: true,
            rotations: vec![1, 2, -3],
            conjugation: true,
        },
        &mut rng,
    )?;
    let ev = Evaluator::new(&ctx, Arc::new(keys))?;
    let enc = Encoder::new(&ctx);
    let top = ctx.max_level();
    let scale = ctx.params().default_scale();
    let va: Vec<f64> = (0..ctx.slots()).map(|i| (i as f64 * 0.01).sin()).collect();
    let vb: Vec<f64> = (0..ctx.slots()).map(|i| (i as f64 * 0.03).cos()).collect();
    let pa = enc.encode(&va, top, scale)?;
    let pb = enc.encode(&vb, top, scale)?;
    let a = pk.encrypt(&pa, &mut rng)?;
    let b = sk.encrypt(&pb, &mut rng)?;
    let digest = |name: &str, c: &Ciphertext| -> Result<(), Box<dyn std::error::Error>> {
        let h = Sha256::digest(c.to_bytes(&ctx)?);
        println!(
            "{name}: {}",
            h.iter().map(|x| format!("{x:02x}")).collect::<String>()
        );
        Ok(())
    };
    digest("add", &ev.add(&a, &b)?)?;
    digest("sub", &ev.sub(&a, &b)?)?;
    digest("mul_plain", &ev.mul_plain(&a, &pb)?)?;
    let c3 = ev.mul_no_relin(&a, &b)?;
    digest("relinearize", &ev.relinearize(&c3)?)?;
    let m = ev.mul(&a, &b)?;
    digest("mul", &m)?;
    let r = ev.rescale(&m)?;
    digest("rescale", &r)?;
    digest("rotate", &ev.rotate(&a, 1)?)?;
    digest("rotate_low", &ev.rotate(&r, -3)?)?;
    digest("conjugate", &ev.conjugate(&b)?)?;
    for (i, c) in ev.rotate_hoisted(&r, &[1, 2, -3])?.iter().enumerate() {
        digest(&format!("hoisted{i}"), c)?;
    }
    let m2 = ev.mul(&r, &r)?;
    digest("mul_low", &m2)?;
    let mut a80 = a.clone();
    a80.set_scale(c3.scale());
    digest("add3", &ev.add(&c3, &a80)?)?;
    digest("add3b", &ev.add(&a80, &c3)?)?;
    digest("mul_plain3", &ev.mul_plain(&c3, &pb)?)?;
    Ok(())
}
