//! Agreement files (privet-audit's `Agreement::parse`): any text gives an agreement or an
//! error, never a panic; what parses hashes the same when parsed again, and its signatures can
//! be checked.

/// One fuzz input (see the module docs).
pub fn run(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(agreement) = privet_audit::Agreement::parse(text, None)
    {
        let _ = agreement.signature_status();
        let again = privet_audit::Agreement::parse(text, None).expect("parses twice");
        assert_eq!(again.hash(), agreement.hash());
        assert_eq!(again.canonical_bytes(), agreement.canonical_bytes());
    }
}
