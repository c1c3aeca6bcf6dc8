//! Times the ristretto255 operations of the PSI on one thread (µs per operation), so a build's
//! backend (curve25519-dalek's AVX2 or AVX-512 IFMA) can be compared operation by operation.
//!
//! Prints wall and CPU time per operation (CPU time from Linux's `/proc/thread-self/schedstat`,
//! which stays meaningful on a machine shared with other work; `-` elsewhere).
//!
//! `group_ops [N]` (default N = 20000)

use std::hint::black_box;
use std::time::Instant;

use curve25519_dalek::Scalar;
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::RistrettoPoint;
use privet_psi::group::{SessionId, hash_to_group, tag_of};

/// Nanoseconds this thread has run on a CPU (Linux), if known.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn report(name: &str, n: usize, t: Instant, cpu0: Option<u64>) {
    let wall = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let cpu = match (cpu0, cpu_ns()) {
        (Some(a), Some(b)) => format!("{:8.2}", (b - a) as f64 / 1e3 / n as f64),
        _ => "       -".to_string(),
    };
    println!("{name:<40} wall {wall:8.2} µs   cpu {cpu} µs");
}

fn time<T>(name: &str, n: usize, mut f: impl FnMut(usize) -> T) {
    let (t, cpu0) = (Instant::now(), cpu_ns());
    for i in 0..n {
        black_box(f(i));
    }
    report(name, n, t, cpu0);
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let s = SessionId::derive(&[1; 32], &[2; 32]);
    let ids: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("customer-{i}@example.org").into_bytes())
        .collect();
    let k = Scalar::from_bytes_mod_order_wide(&[7u8; 64]);
    let pts: Vec<RistrettoPoint> = ids.iter().map(|id| hash_to_group(&s, id)).collect();
    let enc: Vec<[u8; 32]> = pts.iter().map(|p| p.compress().to_bytes()).collect();

    time("hash_to_group", n, |i| hash_to_group(&s, &ids[i]));
    time("variable-base k * P", n, |i| k * pts[i]);
    time("fixed-base k * G (table)", n, |i| {
        RISTRETTO_BASEPOINT_TABLE * &(k + Scalar::from(i as u64))
    });
    time("decompress", n, |i| {
        curve25519_dalek::ristretto::CompressedRistretto(enc[i]).decompress()
    });
    time("compress (single)", n, |i| pts[i].compress());
    let (t, cpu0) = (Instant::now(), cpu_ns());
    for c in pts.chunks(512) {
        black_box(RistrettoPoint::double_and_compress_batch(c));
    }
    report("double_and_compress_batch (per point)", n, t, cpu0);
    let c = pts[0].compress();
    time("tag (SHA-512)", n, |_| tag_of(&s, &c, 10));
    time("point addition", n, |i| pts[i] + pts[(i + 1) % n]);
}
