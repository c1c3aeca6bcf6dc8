//! Serialization: round trips, seeded compression, and every kind of bad input.

use std::sync::Arc;

use privet_he::wire::{DecodeOptions, Kind, peek_kind};
use privet_he::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn setup(name: ParameterSetName) -> (Arc<CkksContext>, SecretKey, ChaCha20Rng) {
    let ctx = CkksContext::new(CkksParameters::named(name)).unwrap_or_else(|e| panic!("{e}"));
    let mut rng = ChaCha20Rng::seed_from_u64(77);
    let sk = SecretKey::generate(&ctx, &mut rng);
    (ctx, sk, rng)
}

fn ok<T>(r: Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn decode_err(r: Result<Ciphertext>) -> DecodeError {
    match r {
        Err(HeError::Decode(e)) => e,
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[test]
fn round_trips_and_sizes() {
    let (ctx, sk, mut rng) = setup(ParameterSetName::N13Depth2);
    let enc = Encoder::new(&ctx);
    let opts = DecodeOptions::default();
    let v: Vec<f64> = (0..100).map(|i| i as f64 * 0.01).collect();
    let pt = ok(enc.encode(&v, ctx.max_level(), ctx.params().default_scale()));
    let ct = ok(sk.encrypt(&pt, &mut rng));
    let bytes = ok(ct.to_bytes(&ctx));
    assert_eq!(bytes.len(), ct.serialized_len(&ctx));
    // N = 8192, primes of 60 + 40 + 40 bits: 143,360 bytes per polynomial; seeded: one polynomial.
    assert_eq!(bytes.len(), 34 + 143_360 + 32);
    let back = ok(Ciphertext::from_bytes(&ctx, &bytes, &opts));
    assert_eq!(back, ct);
    assert!(back.is_seeded());
    let out = ok(enc.decode(&ok(sk.decrypt(&back))));
    assert!((out[50] - 0.5).abs() < 1e-6);

    // After an operation the ciphertext is no longer seeded: two polynomials.
    let ev = Evaluator::without_keys(&ctx);
    let sum = ok(ev.add(&ct, &ct));
    let sb = ok(sum.to_bytes(&ctx));
    assert_eq!(sb.len(), 34 + 2 * 143_360);
    assert_eq!(ok(Ciphertext::from_bytes(&ctx, &sb, &opts)), sum);
    // A seeded ciphertext dropped to a lower level stays seeded and round-trips.
    let low = ok(ev.mod_drop_to(&ct, 1));
    let lb = ok(low.to_bytes(&ctx));
    assert_eq!(ok(Ciphertext::from_bytes(&ctx, &lb, &opts)), low);
    // Size-3 ciphertexts too.
    let c3 = ok(ev.mul_no_relin(&ct, &ct));
    assert_eq!(
        ok(Ciphertext::from_bytes(&ctx, &ok(c3.to_bytes(&ctx)), &opts)),
        c3
    );

    let pb = ok(pt.to_bytes(&ctx));
    assert_eq!(ok(Plaintext::from_bytes(&ctx, &pb, &opts)), pt);

    let pk = sk.public_key(&mut rng);
    let pkb = pk.to_bytes();
    assert_eq!(pkb.len(), 23 + 32 + 143_360);
    let pk2 = ok(PublicKey::from_bytes(&ctx, &pkb, &opts));
    let c = ok(pk2.encrypt(&pt, &mut rng));
    assert!((ok(enc.decode(&ok(sk.decrypt(&c))))[50] - 0.5).abs() < 1e-5);

    let keys = ok(sk.evaluation_keys(
        &EvaluationKeyConfig {
            relinearization: true,
            rotations: vec![1, -2],
            conjugation: true,
        },
        &mut rng,
    ));
    let kb = ok(keys.to_bytes(&ctx));
    let keys2 = ok(EvaluationKeys::from_bytes(&ctx, &kb, &opts));
    assert_eq!(keys2, keys);
    // Seeded: each key-switching key is its b halves (3 digits x 4 primes) plus one seed.
    let poly_all = (8192 * (60 + 40 + 40 + 60)) / 8;
    assert_eq!(kb.len(), 23 + 5 + 4 * (1 + 32 + 3 * poly_all) + 3 * 4);
    let rk = ok(keys
        .relin()
        .map(|k| k.to_bytes(&ctx))
        .unwrap_or_else(|| Err(HeError::MissingKey("relin".into()))));
    assert_eq!(
        Some(&ok(RelinKey::from_bytes(&ctx, &rk, &opts))),
        keys.relin()
    );
    let g = ctx.galois_element(1);
    let gb = ok(keys
        .galois(g)
        .map(|k| k.to_bytes(&ctx))
        .unwrap_or_else(|| Err(HeError::MissingKey("g".into()))));
    assert_eq!(
        Some(&ok(GaloisKey::from_bytes(&ctx, &gb, &opts))),
        keys.galois(g)
    );

    let skb = sk.to_bytes();
    assert_eq!(skb.len(), 23 + 8192 / 4);
    let sk2 = ok(SecretKey::from_bytes(&ctx, &skb, &opts));
    assert!((ok(enc.decode(&ok(sk2.decrypt(&ct))))[50] - 0.5).abs() < 1e-6);
    assert_eq!(ok(peek_kind(&skb)), Kind::SecretKey);
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let (ctx, sk, mut rng) = setup(ParameterSetName::N13Depth2);
    let enc = Encoder::new(&ctx);
    let opts = DecodeOptions::default();
    let pt = ok(enc.encode(&[1.0, 2.0], ctx.max_level(), ctx.params().default_scale()));
    let ct = ok(sk.encrypt(&pt, &mut rng));
    let good = ok(ct.to_bytes(&ctx));

    // Truncation at many cut points, including inside the header and in the last byte.
    let mut cuts: Vec<usize> = (0..80).collect();
    cuts.extend((0..200).map(|_| rng.random_range(0..good.len())));
    cuts.push(good.len() - 1);
    for cut in cuts {
        let e = decode_err(Ciphertext::from_bytes(&ctx, &good[..cut], &opts));
        assert!(
            matches!(e, DecodeError::Truncated | DecodeError::BadMagic),
            "cut {cut}: {e:?}"
        );
    }
    // Trailing bytes.
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        decode_err(Ciphertext::from_bytes(&ctx, &long, &opts)),
        DecodeError::TrailingBytes(1)
    );
    // Size limit before anything else.
    let small = DecodeOptions {
        max_bytes: 1000,
        level: None,
    };
    assert!(matches!(
        decode_err(Ciphertext::from_bytes(&ctx, &good, &small)),
        DecodeError::TooLarge { .. }
    ));
    // Magic, version, kind.
    let mut b = good.clone();
    b[0] = b'X';
    assert_eq!(
        decode_err(Ciphertext::from_bytes(&ctx, &b, &opts)),
        DecodeError::BadMagic
    );
    let mut b = good.clone();
    b[4] = 9;
    assert_eq!(
        decode_err(Ciphertext::from_bytes(&ctx, &b, &opts)),
        DecodeError::UnsupportedVersion(9)
    );
    let pb = ok(pt.to_bytes(&ctx));
    assert!(matches!(
        decode_err(Ciphertext::from_bytes(&ctx, &pb, &opts)),
        DecodeError::WrongKind { .. }
    ));
    let mut b = good.clone();
    b[6] = 42;
    assert!(matches!(
        decode_err(Ciphertext::from_bytes(&ctx, &b, &opts)),
        DecodeError::Malformed(_)
    ));
    // Other parameters.
    let other = ok(CkksContext::new(CkksParameters::named(
        ParameterSetName::N13Depth3,
    )));
    assert_eq!(
        decode_err(Ciphertext::from_bytes(&other, &good, &opts)),
        DecodeError::WrongParameters
    );
    // Level: out of range, or not the one expected.
    let mut b = good.clone();
    b[23] = 3;
    assert_eq!(
        decode_err(Ciphertext::from_bytes(&ctx, &b, &opts)),
        DecodeError::WrongLevel(3)
    );
    let at1 = DecodeOptions {
        level: Some(1),
        ..opts
    };
    assert_eq!(
        decode_err(Ciphertext::from_bytes(&ctx, &good, &at1)),
        DecodeError::WrongLevel(2)
    );
    // Size, scale, flags.
    for (pos, val) in [(24usize, 4u8), (24, 1), (33, 2)] {
        let mut b = good.clone();
        b[pos] = val;
        assert!(
            matches!(
                decode_err(Ciphertext::from_bytes(&ctx, &b, &opts)),
                DecodeError::Malformed(_)
            ),
            "{pos}"
        );
    }
    for bad in [f64::NAN, f64::INFINITY, -1.0, 0.5, 2f64.powi(1000)] {
        let mut b = good.clone();
        b[25..33].copy_from_slice(&bad.to_le_bytes());
        assert!(
            matches!(
                decode_err(Ciphertext::from_bytes(&ctx, &b, &opts)),
                DecodeError::Malformed(_)
            ),
            "{bad}"
        );
    }
    // A seeded flag on a size-3 ciphertext.
    let ev = Evaluator::without_keys(&ctx);
    let mut c3 = ok(ok(ev.mul_no_relin(&ct, &ct)).to_bytes(&ctx));
    c3[33] = 1;
    assert!(matches!(
        decode_err(Ciphertext::from_bytes(&ctx, &c3, &opts)),
        DecodeError::Malformed(_)
    ));
    // A residue at or above its prime: set the first 60-bit residue to all ones.
    let mut b = good.clone();
    for byte in &mut b[34..41] {
        *byte = 0xff;
    }
    b[41] |= 0x0f;
    assert!(matches!(
        decode_err(Ciphertext::from_bytes(&ctx, &b, &opts)),
        DecodeError::Malformed(_)
    ));

    // Keys: a wrong digit count, an even Galois element, a duplicate element.
    let keys = ok(sk.evaluation_keys(
        &EvaluationKeyConfig {
            relinearization: false,
            rotations: vec![1],
            conjugation: false,
        },
        &mut rng,
    ));
    let kb = ok(keys.to_bytes(&ctx));
    let mut b = kb.clone();
    b[23 + 5 + 4] = 7; // digit count of the first key
    assert!(matches!(
        EvaluationKeys::from_bytes(&ctx, &b, &opts),
        Err(HeError::Decode(DecodeError::Malformed(_)))
    ));
    let mut b = kb.clone();
    b[23 + 5..23 + 9].copy_from_slice(&4u32.to_le_bytes());
    assert!(matches!(
        EvaluationKeys::from_bytes(&ctx, &b, &opts),
        Err(HeError::Decode(DecodeError::Malformed(_)))
    ));
    let mut b = kb.clone();
    b[24..28].copy_from_slice(&2u32.to_le_bytes());
    assert!(matches!(
        EvaluationKeys::from_bytes(&ctx, &b, &opts),
        Err(HeError::Decode(DecodeError::Truncated))
    ));
    let mut b = kb.clone();
    b[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        EvaluationKeys::from_bytes(&ctx, &b, &opts),
        Err(HeError::Decode(DecodeError::Malformed(_)))
    ));
    // Secret key: an invalid 2-bit code.
    let mut skb = sk.to_bytes().to_vec();
    skb[23] = 0xff;
    assert!(matches!(
        SecretKey::from_bytes(&ctx, &skb, &opts),
        Err(HeError::Decode(DecodeError::Malformed(_)))
    ));
    // Objects of other parameters are refused by the encoder too.
    assert_eq!(ct.to_bytes(&other).err(), Some(HeError::ParameterMismatch));
}

/// Regression (fuzz target `he_wire`, `tests/data/he_wire_evk_unsorted.bin`): a key set whose
/// Galois keys were not in increasing element order decoded, and re-encoded (sorted) to other
/// bytes. Such a set is now refused, as a duplicate element already was.
#[test]
fn he_wire_evk_unsorted() {
    // The fuzz target's parameters, under which the fuzzer found the input.
    let p = ok(CkksParameters::hazmat_unchecked(
        4,
        &[30, 25],
        &[30],
        20,
        Hazmat::InsecureForTestingOnly,
    ));
    let ctx = ok(CkksContext::new(p));
    let opts = DecodeOptions {
        max_bytes: 1 << 16,
        level: None,
    };
    let found = include_bytes!("data/he_wire_evk_unsorted.bin");
    assert_eq!(
        EvaluationKeys::from_bytes(&ctx, found, &opts).err(),
        Some(HeError::Decode(DecodeError::Malformed(
            "Galois keys out of order"
        )))
    );

    // The same from a real key set: swapping its two Galois keys is refused, the set as encoded
    // round-trips to the same bytes.
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let sk = SecretKey::generate(&ctx, &mut rng);
    let keys = ok(sk.evaluation_keys(
        &EvaluationKeyConfig {
            relinearization: false,
            rotations: vec![1, 2],
            conjugation: false,
        },
        &mut rng,
    ));
    let kb = ok(keys.to_bytes(&ctx));
    let back = ok(EvaluationKeys::from_bytes(&ctx, &kb, &opts));
    assert_eq!(ok(back.to_bytes(&ctx)), kb);
    // Header (23 bytes), relinearization flag, key count; then two equal-length blocks.
    let head = 23 + 1 + 4;
    let block = (kb.len() - head) / 2;
    let mut swapped = kb[..head].to_vec();
    swapped.extend_from_slice(&kb[head + block..]);
    swapped.extend_from_slice(&kb[head..head + block]);
    assert_ne!(swapped, kb);
    assert_eq!(
        EvaluationKeys::from_bytes(&ctx, &swapped, &opts).err(),
        Some(HeError::Decode(DecodeError::Malformed(
            "Galois keys out of order"
        )))
    );
}
