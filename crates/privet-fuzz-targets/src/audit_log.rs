//! Exported audit logs and head files (privet-audit's `LogFile::parse`, `head_from_json`,
//! `entry_from_json`): any text gives a value or an error, never a panic; a parsed log verifies
//! or fails with an error, and re-exports to text that parses to the same entries and heads.

/// One fuzz input (see the module docs).
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(log) = privet_audit::LogFile::parse(text) {
        let _ = log.verify(None, &[]);
        let back = privet_audit::LogFile::parse(&log.to_text()).expect("a re-exported log parses");
        assert_eq!(back.entries, log.entries);
        assert_eq!(back.heads.len(), log.heads.len());
        assert!(back.heads.iter().all(|h| log.heads.contains(h)));
    }
    let _ = privet_audit::head_from_json(text);
    let _ = privet_audit::entry_from_json(text);
}
