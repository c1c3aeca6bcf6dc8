//! Writes the seed corpus of the `he_wire` fuzz target (fuzz/corpus/he_wire): one valid object
//! of each kind under the fuzz target's tiny hazmat parameters.
//!
//! `cargo run -p privet-he --example he_fuzz_corpus -- fuzz/corpus/he_wire`

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use privet_he::{
    CkksContext, CkksParameters, Encoder, EvaluationKeyConfig, Evaluator, Hazmat, SecretKey,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/corpus/he_wire".into());
    std::fs::create_dir_all(&dir)?;
    let p =
        CkksParameters::hazmat_unchecked(4, &[30, 25], &[30], 20, Hazmat::InsecureForTestingOnly)?;
    let ctx = CkksContext::new(p)?;
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let sk = SecretKey::generate(&ctx, &mut rng);
    let pk = sk.public_key(&mut rng);
    let keys = sk.evaluation_keys(
        &EvaluationKeyConfig {
            relinearization: true,
            rotations: vec![1],
            conjugation: true,
        },
        &mut rng,
    )?;
    let enc = Encoder::new(&ctx);
    let pt = enc.encode(&[1.0, -2.0, 3.5], 1, 1e6)?;
    let seeded = sk.encrypt(&pt, &mut rng)?;
    let public = pk.encrypt(&pt, &mut rng)?;
    let ev = Evaluator::without_keys(&ctx);
    let c3 = ev.mul_no_relin(&public, &public)?;
    let low = ev.mod_drop_to(&public, 0)?;
    let g = ctx.galois_element(1);
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("ct_seeded", seeded.to_bytes(&ctx)?),
        ("ct_public", public.to_bytes(&ctx)?),
        ("ct_size3", c3.to_bytes(&ctx)?),
        ("ct_level0", low.to_bytes(&ctx)?),
        ("pt", pt.to_bytes(&ctx)?),
        ("pk", pk.to_bytes()),
        ("relin", keys.relin().ok_or("relin")?.to_bytes(&ctx)?),
        ("galois", keys.galois(g).ok_or("galois")?.to_bytes(&ctx)?),
        ("evk", keys.to_bytes(&ctx)?),
        ("sk", sk.to_bytes().to_vec()),
    ];
    for (name, bytes) in files {
        std::fs::write(format!("{dir}/{name}"), bytes)?;
    }
    Ok(())
}
