//! Arbitrary bytes as a PSI wire message: decoding never panics, and whatever decodes encodes
//! back to a message that decodes to the same value.

use privet_psi::wire::{WireLimits, decode, encode};

/// One fuzz input (see the module docs).
pub fn run(data: &[u8]) {
    let limits = WireLimits::default();
    if let Ok(msg) = decode(data, &limits) {
        let again = decode(&encode(&msg), &limits).expect("re-encoded message decodes");
        assert_eq!(again, msg);
    }
}
