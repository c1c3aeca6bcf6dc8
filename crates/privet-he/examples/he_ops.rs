//! Times each CKKS operation (median of repetitions) and prints JSON lines; used by bench/he/.
//!
//! `cargo run --release -p privet-he --example he_ops -- LOG_N BITS,BITS,... REPS`
//! The last bit size is the special prime (as in TenSEAL's coeff_mod_bit_sizes).

mod common;

use std::sync::Arc;
use std::time::Instant;

use privet_he::{
    CkksContext, CkksParameters, Encoder, EvaluationKeyConfig, Evaluator, SecretKey, os_rng,
};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// CPU time of the calling thread, where the platform gives it.
#[cfg(target_os = "linux")]
fn thread_cpu_us() -> Option<f64> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Some(t.tv_sec as f64 * 1e6 + t.tv_nsec as f64 / 1e3)
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_us() -> Option<f64> {
    None
}

/// Median wall-clock time and median CPU time of the calling thread, in microseconds. With one
/// thread (RAYON_NUM_THREADS=1) all the work runs on the calling thread, so the CPU time is the
/// operation's, whatever else the machine runs.
fn time<T>(reps: usize, mut f: impl FnMut() -> T) -> (f64, Option<f64>) {
    let mut wall = Vec::with_capacity(reps);
    let mut cpu = Vec::with_capacity(reps);
    for _ in 0..reps {
        let c = thread_cpu_us();
        let t = Instant::now();
        std::hint::black_box(f());
        wall.push(t.elapsed().as_secs_f64() * 1e6);
        if let (Some(c0), Some(c1)) = (c, thread_cpu_us()) {
            cpu.push(c1 - c0);
        }
    }
    let cpu = (cpu.len() == reps && reps > 0).then(|| median(cpu));
    (median(wall), cpu)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (log_n, bits) = common::ring(&args, 1)?;
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
    let ops = [
        ("keygen_secret", t_sk),
        ("keygen_public", t_pk),
        ("keygen_relin", t_rk),
        ("keygen_galois_one", t_gk),
        ("encode", t_encode),
        ("encrypt_public", t_enc_pk),
        ("encrypt_symmetric", t_enc_sk),
        ("decrypt_decode", t_dec),
        ("add", t_add),
        ("mul_plain", t_mul_plain),
        ("mul", t_mul),
        ("relinearize", t_relin),
        ("mul_relin", t_mul_relin),
        ("rescale", t_rescale),
        ("rotate", t_rotate),
    ];
    let wall: Vec<String> = ops
        .iter()
        .map(|(k, (w, _))| format!("\"{k}\":{w:.1}"))
        .collect();
    // The calling thread's CPU time is the operation's only when it is the only thread.
    let cpu: Option<Vec<String>> = (threads == 1)
        .then(|| {
            ops.iter()
                .map(|(k, (_, c))| c.map(|c| format!("\"{k}\":{c:.1}")))
                .collect()
        })
        .flatten();
    let cpu = cpu.map_or(String::new(), |c| {
        format!(",\"cpu_us\":{{{}}}", c.join(","))
    });
    println!(
        "{{\"impl\":\"privet\",\"log_n\":{log_n},\"bits\":{bits:?},\"threads\":{threads},\"us\":{{{}}}{cpu},\
\"ciphertext_bytes\":{{\"public\":{bytes_public},\"symmetric_seeded\":{bytes_symmetric}}}}}",
        wall.join(",")
    );
    Ok(())
}
