//! Times each CKKS operation (median of repetitions) and prints JSON lines; used by bench/he/.
//!
//! `cargo run --release -p privet-he --example he_ops -- LOG_N BITS,BITS,... REPS`
//! The last bit size is the special prime (as in TenSEAL's coeff_mod_bit_sizes).

use std::sync::Arc;
use std::time::Instant;

use privet_he::{
    CkksContext, CkksParameters, Encoder, EvaluationKeyConfig, Evaluator, SecretKey, os_rng,
};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn time<T>(reps: usize, mut f: impl FnMut() -> T) -> f64 {
    let mut v = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        std::hint::black_box(f());
        v.push(t.elapsed().as_secs_f64() * 1e6);
    }
    median(v)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let log_n: u32 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(13);
    let bits: Vec<u32> = args
        .get(2)
        .map(|s| {
            s.split(',')
                .map(|x| x.parse())
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or(vec![60, 40, 40, 60]);
    let reps: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(20);
    let (q, p) = bits.split_at(bits.len() - 1);
    let params = CkksParameters::from_bit_sizes(log_n, q, p, 40)?;
    let ctx = CkksContext::new(params)?;
    let mut rng = os_rng();
    let top = ctx.max_level();
    let scale = ctx.params().default_scale();
    let threads = rayon::current_num_threads();

    let t_sk = time(reps, || SecretKey::generate(&ctx, &mut rng));
    let sk = SecretKey::generate(&ctx, &mut rng);
    let t_pk = time(reps, || sk.public_key(&mut rng));
    let pk = sk.public_key(&mut rng);
    let t_rk = time(reps, || sk.relin_key(&mut rng));
    let g = ctx.galois_element(1);
    let t_gk = time(reps, || sk.galois_key(g, &mut rng));
    let keys = sk.evaluation_keys(
        &EvaluationKeyConfig {
            relinearization: true,
            rotations: vec![1],
            conjugation: false,
        },
        &mut rng,
    )?;
    let ev = Evaluator::new(&ctx, Arc::new(keys))?;
    let enc = Encoder::new(&ctx);
    let vals: Vec<f64> = (0..ctx.slots()).map(|i| (i as f64 * 0.01).sin()).collect();
    let t_encode = time(reps, || enc.encode(&vals, top, scale));
    let pt = enc.encode(&vals, top, scale)?;
    let t_enc_pk = time(reps, || pk.encrypt(&pt, &mut rng));
    let t_enc_sk = time(reps, || sk.encrypt(&pt, &mut rng));
    let a = pk.encrypt(&pt, &mut rng)?;
    let b = pk.encrypt(&pt, &mut rng)?;
    let t_dec = time(reps, || {
        enc.decode(&sk.decrypt(&a).unwrap_or_else(|e| panic!("{e}")))
    });
    let t_add = time(reps, || ev.add(&a, &b));
    let t_mul_plain = time(reps, || ev.mul_plain(&a, &pt));
    let t_mul = time(reps, || ev.mul_no_relin(&a, &b));
    let c3 = ev.mul_no_relin(&a, &b)?;
    let t_relin = time(reps, || ev.relinearize(&c3));
    let t_mul_relin = time(reps, || ev.mul(&a, &b));
    let c2 = ev.mul(&a, &b)?;
    let t_rescale = time(reps, || ev.rescale(&c2));
    let t_rotate = time(reps, || ev.rotate(&a, 1));
    let bytes_public = a.to_bytes(&ctx)?.len();
    let bytes_symmetric = sk.encrypt(&pt, &mut rng)?.to_bytes(&ctx)?.len();
    let line = format!(
        "{{\"impl\":\"privet\",\"log_n\":{log_n},\"bits\":{bits:?},\"threads\":{threads},\"us\":{{\
\"keygen_secret\":{t_sk:.1},\"keygen_public\":{t_pk:.1},\"keygen_relin\":{t_rk:.1},\"keygen_galois_one\":{t_gk:.1},\
\"encode\":{t_encode:.1},\"encrypt_public\":{t_enc_pk:.1},\"encrypt_symmetric\":{t_enc_sk:.1},\"decrypt_decode\":{t_dec:.1},\
\"add\":{t_add:.1},\"mul_plain\":{t_mul_plain:.1},\"mul\":{t_mul:.1},\"relinearize\":{t_relin:.1},\"mul_relin\":{t_mul_relin:.1},\
\"rescale\":{t_rescale:.1},\"rotate\":{t_rotate:.1}}},\"ciphertext_bytes\":{{\"public\":{bytes_public},\"symmetric_seeded\":{bytes_symmetric}}}}}"
    );
    println!("{line}");
    Ok(())
}
