//! Arbitrary bytes as a PSI wire message: decoding never panics, and whatever decodes encodes
//! back to a message that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use privet_psi::wire::{WireLimits, decode, encode};

fuzz_target!(|data: &[u8]| {
    let limits = WireLimits::default();
    if let Ok(msg) = decode(data, &limits) {
        let again = decode(&encode(&msg), &limits).expect("re-encoded message decodes");
        assert_eq!(again, msg);
    }
});
