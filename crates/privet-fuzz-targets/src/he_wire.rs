//! Decodes arbitrary bytes as every privet-he object kind, under a tiny (hazmat) parameter set
//! so that valid objects are small enough for the fuzzer to reach. Whatever decodes must
//! re-encode to the same bytes.

use std::sync::{Arc, OnceLock};

use privet_he::wire::DecodeOptions;
use privet_he::*;

pub fn context() -> &'static Arc<CkksContext> {
    static C: OnceLock<Arc<CkksContext>> = OnceLock::new();
    C.get_or_init(|| {
        let p = CkksParameters::hazmat_unchecked(
            4,
            &[30, 25],
            &[30],
            20,
            Hazmat::InsecureForTestingOnly,
        )
        .expect("parameters");
        CkksContext::new(p).expect("context")
    })
}

/// One fuzz input (see the module docs).
pub fn run(data: &[u8]) {
    let ctx = context();
    let opts = DecodeOptions {
        max_bytes: 1 << 16,
        level: None,
    };
    if let Ok(ct) = Ciphertext::from_bytes(ctx, data, &opts) {
        assert_eq!(ct.to_bytes(ctx).expect("encode"), data);
    }
    if let Ok(pt) = Plaintext::from_bytes(ctx, data, &opts) {
        assert_eq!(pt.to_bytes(ctx).expect("encode"), data);
    }
    if let Ok(pk) = PublicKey::from_bytes(ctx, data, &opts) {
        assert_eq!(pk.to_bytes(), data);
    }
    if let Ok(k) = RelinKey::from_bytes(ctx, data, &opts) {
        assert_eq!(k.to_bytes(ctx).expect("encode"), data);
    }
    if let Ok(k) = GaloisKey::from_bytes(ctx, data, &opts) {
        assert_eq!(k.to_bytes(ctx).expect("encode"), data);
    }
    if let Ok(k) = EvaluationKeys::from_bytes(ctx, data, &opts) {
        // Galois keys are written sorted by element, so a decoded set re-encodes identically.
        assert_eq!(k.to_bytes(ctx).expect("encode"), data);
    }
    if let Ok(k) = SecretKey::from_bytes(ctx, data, &opts) {
        assert_eq!(k.to_bytes().as_slice(), data);
    }
}
