//! One core, the same work for both schemes: encrypt N values, add them up, decrypt the sum;
//! plus the ciphertext size. Prints JSON.
use std::time::Instant;

use libpaillier::paillier2048::{DecryptionKey, EncryptionKey};
use privet_psi::elgamal::{Ciphertext, SecretKey, SumRange};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let values: Vec<i64> = (0..n as i64).map(|i| (i * 7919) % 1000).collect();
    let want: i64 = values.iter().sum();

    // Exponential ElGamal (privet-psi), single thread.
    let pool = rayon_one();
    let mut rng = ChaCha20Rng::from_os_rng();
    let (sk, _pk) = SecretKey::generate(&mut rng);
    let t = Instant::now();
    let cts = pool(&|| sk.encrypt_batch(&values, &mut rng.clone()));
    let eg_enc = t.elapsed().as_secs_f64();
    let idx: Vec<u32> = (0..n as u32).collect();
    let t = Instant::now();
    let sum = Ciphertext::sum_selected(&cts, &idx).unwrap();
    let eg_add = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let got = sk.decrypt(&sum, SumRange::new(0, 1000 * n as i64).unwrap()).unwrap();
    let eg_dec = t.elapsed().as_secs_f64();
    assert_eq!(got, want);

    // Paillier, 2048-bit modulus (ciphertexts modulo n^2: 512 bytes).
    let t = Instant::now();
    let dk = DecryptionKey::random().unwrap();
    let keygen = t.elapsed().as_secs_f64();
    let ek = EncryptionKey::from(&dk);
    let t = Instant::now();
    let pcts: Vec<_> = values
        .iter()
        .map(|v| ek.encrypt(v.to_be_bytes()).unwrap().0)
        .collect();
    let p_enc = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut acc = pcts[0];
    for c in &pcts[1..] {
        acc = ek.add(&acc, c).unwrap();
    }
    let p_add = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let bytes = dk.decrypt(&acc).unwrap();
    let p_dec = t.elapsed().as_secs_f64();
    let mut be = [0u8; 8];
    be[8 - bytes.len()..].copy_from_slice(&bytes);
    assert_eq!(i64::from_be_bytes(be), want);

    let us = |s: f64| s * 1e6 / n as f64;
    println!(
        "{{\"n\": {n}, \"elgamal\": {{\"encrypt_us\": {:.2}, \"add_us\": {:.3}, \"decrypt_sum_ms\": {:.3}, \"ciphertext_bytes\": 64}}, \
         \"paillier2048\": {{\"keygen_s\": {keygen:.2}, \"encrypt_us\": {:.2}, \"add_us\": {:.3}, \"decrypt_sum_ms\": {:.3}, \"ciphertext_bytes\": 512}}}}",
        us(eg_enc), us(eg_add), eg_dec * 1e3, us(p_enc), us(p_add), p_dec * 1e3
    );
}

/// Runs `f` on a one-thread rayon pool (privet-psi parallelises with rayon).
fn rayon_one() -> impl Fn(&dyn Fn() -> Vec<u8>) -> Vec<u8> {
    let _ = rayon::ThreadPoolBuilder::new().num_threads(1).build_global();
    |f| f()
}
