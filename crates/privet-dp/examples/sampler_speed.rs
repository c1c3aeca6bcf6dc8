//! Samples per second of the secure samplers on one core.
//!
//! `cargo run --release -p privet-dp --example sampler_speed`

use std::hint::black_box;
use std::time::Instant;

use privet_dp::noise::{DiscreteGaussian, DiscreteLaplace, GriddedGaussian, Ratio, os_seeded_rng};
use rand_core::RngCore;

fn rate(label: &str, n: usize, mut f: impl FnMut()) {
    // Warm up, then take the best of three runs.
    for _ in 0..n / 10 {
        f();
    }
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("{label:<48} {:>8.2} M/s", n as f64 / best / 1e6);
}

fn main() -> privet_dp::Result<()> {
    let mut rng = os_seeded_rng()?;
    let n = 2_000_000;
    rate("ChaCha20 next_u64 (reference)", n * 4, || {
        black_box(rng.next_u64());
    });
    for sigma in [3u64, 1 << 10, 1 << 20, (1 << 31) - 1] {
        let g = DiscreteGaussian::with_integer_sigma(sigma)?;
        rate(&format!("discrete Gaussian, sigma = {sigma}"), n, || {
            black_box(g.sample(&mut rng));
        });
    }
    let g = DiscreteGaussian::new(Ratio::new(7, 3)?)?;
    rate("discrete Gaussian, sigma^2 = 7/3", n, || {
        black_box(g.sample(&mut rng));
    });
    let l = DiscreteLaplace::new(Ratio::new(10, 1)?)?;
    rate("discrete Laplace, scale = 10", n, || {
        black_box(l.sample(&mut rng));
    });
    let gg = GriddedGaussian::new(1.0)?;
    let dim = 100_000;
    let mut v = vec![0.01_f32; dim];
    let reps = 20;
    let t = Instant::now();
    for _ in 0..reps {
        gg.add_noise_f32(&mut rng, &mut v)?;
    }
    let secs = t.elapsed().as_secs_f64() / reps as f64;
    println!(
        "{:<48} {:>8.2} M/s ({:.1} ms per 100k-parameter vector)",
        format!("gridded Gaussian f32, g = 2^{}", gg.granularity().log2()),
        dim as f64 / secs / 1e6,
        secs * 1e3
    );
    Ok(())
}
