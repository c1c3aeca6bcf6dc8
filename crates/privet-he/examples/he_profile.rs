//! Runs one operation in a loop, for profiling: `he_profile OP LOG_N BITS ITERS`.
mod common;

use std::sync::Arc;

use privet_he::{
    CkksContext, CkksParameters, Encoder, EvaluationKeyConfig, Evaluator, SecretKey, os_rng,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let op = args.get(1).cloned().unwrap_or("relin".into());
    let (log_n, bits) = common::ring(&args, 2)?;
    let iters: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(200);
    let (q, p) = bits.split_at(bits.len() - 1);
    let ctx = CkksContext::new(CkksParameters::from_bit_sizes(log_n, q, p, 40)?)?;
    let mut rng = os_rng();
    let sk = SecretKey::generate(&ctx, &mut rng);
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
    let pt = enc.encode(&vals, ctx.max_level(), ctx.params().default_scale())?;
    let a = sk.encrypt(&pt, &mut rng)?;
    let b = sk.encrypt(&pt, &mut rng)?;
    let c3 = ev.mul_no_relin(&a, &a)?;
    let cpu0 = thread_cpu_ns();
    let t = std::time::Instant::now();
    for _ in 0..iters {
        match op.as_str() {
            "relin" => drop(std::hint::black_box(ev.relinearize(&c3)?)),
            "mul" => drop(std::hint::black_box(ev.mul_no_relin(&a, &b)?)),
            "mul_relin" => drop(std::hint::black_box(ev.mul(&a, &b)?)),
            "add" => drop(std::hint::black_box(ev.add(&a, &b)?)),
            "rotate" => drop(std::hint::black_box(ev.rotate(&a, 1)?)),
            "rescale" => drop(std::hint::black_box(ev.rescale(&a)?)),
            "encrypt" => drop(std::hint::black_box(sk.encrypt(&pt, &mut rng)?)),
            "decrypt" => drop(std::hint::black_box(enc.decode(&sk.decrypt(&a)?)?)),
            "encode" => drop(std::hint::black_box(enc.encode(
                &vals,
                ctx.max_level(),
                1e12,
            )?)),
            _ => return Err("unknown op".into()),
        }
    }
    let wall = t.elapsed() / iters.max(1) as u32;
    match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) => println!(
            "{op}: {wall:?} per call, {:.1} µs CPU per call (this thread)",
            (b - a) as f64 / 1e3 / iters.max(1) as f64
        ),
        _ => println!("{op}: {wall:?} per call"),
    }
    Ok(())
}

/// CPU time of the calling thread (Linux: /proc/thread-self/schedstat), so that figures taken on
/// a loaded machine count only the time this thread ran.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}
