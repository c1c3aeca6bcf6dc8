//! The audit log: entries, signed heads, exported files, and the node's witness.

#![allow(clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use privet_audit::*;
use privet_identity::Name;
use proptest::prelude::*;

fn name(s: &str) -> Name {
    s.parse().unwrap()
}

fn coordinator_key() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix(1_780_000_000 + seconds).unwrap()
}

fn job() -> JobId {
    "job-7".parse().unwrap()
}

/// One entry of every kind.
fn entries() -> Vec<Entry> {
    let agreement = Hash([9; 32]);
    let purpose = Purpose::new(
        "DUO:0000007".parse().unwrap(),
        Some("MONDO:0007254".parse().unwrap()),
        ["DUO:0000046".parse().unwrap()],
    )
    .unwrap();
    let nodes = vec![name("hospital-a"), name("hospital-b"), name("hospital-c")];
    let request = JobRequest {
        agreement: Some(agreement),
        purpose,
        task: Task::Train {
            model: ModelKind::Mlp,
            strategy: StrategyKind::FedProx,
        },
        coordinator: name("coordinator"),
        operator: Some(name("admin")),
        nodes: nodes.clone(),
        secure_aggregation: true,
        dp: Some(DpBudget::new(0.1 + 0.2, 1e-5).unwrap()),
        min_clients_per_round: 3,
        now: at(0),
        spent: DpBudget::ZERO,
    };
    let refusal = Refusal::SecAggRequired;
    vec![
        Entry::new(
            at(0),
            Event::AgreementRecorded {
                agreement: name("breast-cancer-study"),
                version: 1,
                hash: agreement,
            },
        ),
        Entry::new(
            at(1),
            Event::job_refused("job-6".parse().unwrap(), Some(agreement), &refusal),
        ),
        Entry::new(
            at(2),
            Event::JobAdmitted(Admission::new(job(), agreement, &request)),
        ),
        Entry::new(
            at(3),
            Event::RoundCompleted {
                job: job(),
                round: 1,
                participants: nodes.clone(),
                secure_aggregation: true,
                dp: Some(DpBudget::new(0.724_223_402_610_959_5, 1e-5).unwrap()),
            },
        ),
        Entry::new(
            at(4),
            Event::node_refused(
                job(),
                name("hospital-c"),
                Some(2),
                &Refusal::Expired {
                    agreement: name("breast-cancer-study"),
                    not_after: at(4),
                },
            ),
        ),
        Entry::new(
            at(5),
            Event::PrivacySpend {
                job: job(),
                agreement,
                spent: DpBudget::new(0.724_223_402_610_959_5, 1e-5).unwrap(),
                total: DpBudget::new(1.5, 2e-5).unwrap(),
            },
        ),
        Entry::new(
            at(6),
            Event::ModelExport {
                job: job(),
                party: name("admin"),
                dp_trained: true,
            },
        ),
        Entry::new(
            at(7),
            Event::cancellation(job(), Some(name("admin")), "study closed").unwrap(),
        ),
    ]
}

/// A log of `entries()` with a head signed after every entry.
fn exported() -> LogFile {
    let key = coordinator_key();
    let mut log = AuditLog::new(name("coordinator"));
    let mut heads = Vec::new();
    for (i, e) in entries().iter().enumerate() {
        log.append(e);
        heads.push(log.sign_head(&key, at(i as i64)));
    }
    LogFile::new(name("coordinator"), key.verifying_key(), entries(), heads)
}

#[test]
fn an_exported_log_round_trips_and_verifies() {
    let file = exported();
    let text = file.to_text();
    let back = LogFile::parse(&text).unwrap();
    assert_eq!(back.entries, file.entries);
    assert_eq!(back.heads, file.heads);
    assert_eq!(back.to_text(), text);
    let v = back
        .verify(Some(&coordinator_key().verifying_key()), &[])
        .unwrap();
    assert_eq!(v.size, 8);
    assert_eq!(v.unsigned_tail, 0);
    assert_eq!(v.latest.head.size, 8);
    assert_eq!(v.heads_checked, 8);
    // Floats survive exactly (the hash depends on their bits).
    assert!(text.contains("\"0.30000000000000004\""), "{text}");
}

#[test]
fn entries_round_trip_through_json_one_by_one() {
    for (i, e) in entries().iter().enumerate() {
        let json = entry_to_json(i as u64, e);
        let (index, back) = entry_from_json(&json).unwrap();
        assert_eq!((index, &back), (i as u64, e));
        assert_eq!(back.leaf_hash(), e.leaf_hash());
    }
}

#[test]
fn a_restored_log_has_the_same_root() {
    let mut log = AuditLog::new(name("coordinator"));
    for e in &entries() {
        log.append(e);
    }
    let restored = AuditLog::restore(name("coordinator"), &entries());
    assert_eq!(restored.root(), log.root());
    assert_eq!(restored.len(), 8);
}

fn lines(file: &LogFile) -> Vec<String> {
    file.to_text().lines().map(String::from).collect()
}

fn verify_text(text: &str) -> Result<Verified, AuditError> {
    LogFile::parse(text)?.verify(Some(&coordinator_key().verifying_key()), &[])
}

#[test]
fn a_changed_entry_is_detected() {
    let text = exported().to_text();
    let tampered = text.replacen("\"job-6\"", "\"job-5\"", 1);
    assert_ne!(tampered, text);
    let err = verify_text(&tampered).unwrap_err();
    assert!(matches!(err, AuditError::HeadMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("coordinator coordinator's log"),
        "{err}"
    );
    assert!(err.is_tampering());
}

#[test]
fn a_truncated_log_is_detected() {
    // Entries removed, heads kept: the heads are larger than the log.
    let file = exported();
    let mut cut = file.clone();
    cut.entries.truncate(5);
    let err = cut
        .verify(Some(&coordinator_key().verifying_key()), &[])
        .unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::Truncated {
                signed: 8,
                now: 5,
                ..
            }
        ),
        "{err}"
    );
    // Entries and their heads removed: the file alone looks fine, a head kept by a node
    // catches it.
    let mut cut = file.clone();
    cut.entries.truncate(5);
    cut.heads.truncate(5);
    assert!(cut.verify(None, &[]).is_ok());
    let kept = file.heads[7].clone();
    let err = cut.verify(None, &[kept]).unwrap_err();
    assert!(
        err.to_string()
            .contains("coordinator coordinator truncated its log: it signed a head of 8 entries, the log now has 5"),
        "{err}"
    );
}

#[test]
fn a_reordered_log_is_detected() {
    // Two entry lines swapped as they are: their indexes are out of order.
    let l = lines(&exported());
    // Line 0 is the header; entries and heads alternate from line 1.
    let (a, b) = (3, 5);
    assert!(l[a].starts_with("{\"entry\"") && l[b].starts_with("{\"entry\""));
    let mut swapped = l.clone();
    swapped.swap(a, b);
    let err = verify_text(&swapped.join("\n")).unwrap_err();
    assert!(matches!(err, AuditError::OutOfOrder { .. }), "{err}");
    // Swapped and renumbered: the roots no longer match the signed heads.
    let mut file = exported();
    file.entries.swap(1, 2);
    file.entries[1].0 = 1;
    file.entries[2].0 = 2;
    let err = file
        .verify(Some(&coordinator_key().verifying_key()), &[])
        .unwrap_err();
    assert!(
        matches!(err, AuditError::HeadMismatch { size: 2, .. }),
        "{err}"
    );
}

#[test]
fn a_forked_log_is_detected() {
    // The coordinator shows one node a history where job-6 was admitted, not refused.
    let key = coordinator_key();
    let mut forked_entries = entries();
    forked_entries[1] = Entry::new(
        at(1),
        Event::ModelExport {
            job: "job-6".parse().unwrap(),
            party: name("admin"),
            dp_trained: false,
        },
    );
    let forked = AuditLog::restore(name("coordinator"), &forked_entries);
    let forked_head = forked.sign_head(&key, at(100));
    let err = exported().verify(None, &[forked_head]).unwrap_err();
    assert!(matches!(err, AuditError::Forked { size: 8, .. }), "{err}");
    assert!(
        err.to_string()
            .contains("coordinator coordinator forked its log"),
        "{err}"
    );
    // A forked head of a smaller size does not match the entries it covers.
    let small = AuditLog::restore(name("coordinator"), &forked_entries[..3]);
    let mut file = exported();
    file.heads.retain(|h| h.head.size != 3);
    let err = file
        .verify(None, &[small.sign_head(&key, at(100))])
        .unwrap_err();
    assert!(
        matches!(err, AuditError::HeadMismatch { size: 3, .. }),
        "{err}"
    );
}

#[test]
fn heads_must_be_signed_by_the_trusted_key() {
    let mut file = exported();
    // Another key than the agreement's: refused before anything else.
    let err = file
        .verify(Some(&SigningKey::from_bytes(&[2; 32]).verifying_key()), &[])
        .unwrap_err();
    assert!(matches!(err, AuditError::UntrustedKey { .. }), "{err}");
    // A head signed by someone else.
    let mallory = SigningKey::from_bytes(&[3; 32]);
    file.heads[2] = file.heads[2].head.clone().sign(&mallory);
    let err = file.verify(None, &[]).unwrap_err();
    assert!(matches!(err, AuditError::BadHeadSignature { .. }), "{err}");
    // A log with no head at all vouches for nothing.
    let mut file = exported();
    file.heads.clear();
    assert!(matches!(
        file.verify(None, &[]).unwrap_err(),
        AuditError::NoHead { .. }
    ));
    // Entries after the last head are reported, not hidden.
    let mut file = exported();
    file.heads.truncate(6);
    assert_eq!(file.verify(None, &[]).unwrap().unsigned_tail, 2);
}

#[test]
fn malformed_log_files_name_the_line() {
    let l = lines(&exported());
    let header = l[0].clone();
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "line 1"),
        ("{}".into(), "line 1: not a privet audit log header"),
        (
            header.replace("privet-audit-log", "other"),
            "not a privet audit log",
        ),
        (
            header.replace("\"version\":1", "\"version\":2"),
            "version 2 is not supported",
        ),
        (format!("{header}\nnot json"), "line 2"),
        (
            format!("{header}\n{}", l[3].replace("job-6", "job 6")),
            "invalid job id",
        ),
        (
            format!("{header}\n{}", l[5].replace("DUO:0000046", "DUO:0000999")),
            "line 2: DUO:0000999",
        ),
        (
            format!("{header}\n{}", l[1].replace("\"time\":\"", "\"time\":\"x")),
            "RFC 3339",
        ),
        (
            format!(
                "{header}\n{}",
                l[1].replace("\"index\":0", "\"index\":0,\"extra\":1")
            ),
            "extra",
        ),
    ];
    for (text, expected) in cases {
        assert!(
            !l[1..].iter().any(|line| text.contains(line.as_str())),
            "{text}"
        );
        let err = LogFile::parse(&text).unwrap_err().to_string();
        assert!(err.contains(expected), "expected {expected:?} in: {err}");
        assert!(!err.contains('\n'), "{err}");
    }
}

#[test]
fn a_witness_accepts_extensions_and_names_a_rewriting_coordinator() {
    let key = coordinator_key();
    let coordinator = name("coordinator");
    let mut log = AuditLog::new(coordinator.clone());
    let mut witness = HeadWitness::new(coordinator.clone(), key.verifying_key());
    let all = entries();
    for (i, e) in all.iter().enumerate() {
        log.append(e);
        if i % 3 == 0 {
            let head = log.sign_head(&key, at(i as i64));
            let proof = log
                .consistency_proof(witness.proof_from(), log.len())
                .unwrap();
            witness.observe(&head, &proof).unwrap();
        }
    }
    let seen = witness.last().unwrap().clone();
    assert_eq!(seen.head.size, 7);
    // An inclusion receipt for an entry the node cares about.
    let proof = log.inclusion_proof(3, 7).unwrap();
    witness.check_inclusion(&all[3], &proof).unwrap();
    assert!(witness.check_inclusion(&all[4], &proof).is_err());

    // Truncation.
    let shorter = AuditLog::restore(coordinator.clone(), &all[..5]);
    let err = witness
        .observe(
            &shorter.sign_head(&key, at(50)),
            &shorter.consistency_proof(0, 5).unwrap(),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::Truncated {
                signed: 7,
                now: 5,
                ..
            }
        ),
        "{err}"
    );

    // A fork at the same size.
    let mut other = all[..7].to_vec();
    other[0] = Entry::new(at(0), Event::cancellation(job(), None, "x").unwrap());
    let forked = AuditLog::restore(coordinator.clone(), &other);
    let err = witness
        .observe(
            &forked.sign_head(&key, at(60)),
            &forked.consistency_proof(7, 7).unwrap(),
        )
        .unwrap_err();
    assert!(matches!(err, AuditError::Forked { size: 7, .. }), "{err}");

    // A rewritten history that grew: its consistency proof cannot reach the old root.
    let mut rewritten = other.clone();
    rewritten.push(all[7].clone());
    let rewritten = AuditLog::restore(coordinator.clone(), &rewritten);
    let err = witness
        .observe(
            &rewritten.sign_head(&key, at(70)),
            &rewritten.consistency_proof(7, 8).unwrap(),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("coordinator coordinator rewrote its log"),
        "{err}"
    );

    // A proof for other sizes, a head of another coordinator, a bad signature.
    log.append(&all[0]);
    let head = log.sign_head(&key, at(80));
    assert!(
        witness
            .observe(&head, &log.consistency_proof(0, 9).unwrap())
            .is_err()
    );
    let stranger = AuditLog::restore(name("other"), &all);
    assert!(matches!(
        witness
            .observe(
                &stranger.sign_head(&key, at(80)),
                &stranger.consistency_proof(7, 8).unwrap()
            )
            .unwrap_err(),
        AuditError::WrongCoordinator { .. }
    ));
    let mallory = SigningKey::from_bytes(&[3; 32]);
    assert!(matches!(
        witness
            .observe(
                &log.sign_head(&mallory, at(80)),
                &log.consistency_proof(7, 9).unwrap()
            )
            .unwrap_err(),
        AuditError::BadHeadSignature { .. }
    ));

    // Nothing changed after the refusals; the honest extension is still accepted.
    assert_eq!(witness.last(), Some(&seen));
    witness
        .observe(&head, &log.consistency_proof(7, 9).unwrap())
        .unwrap();
    assert_eq!(witness.proof_from(), 9);

    // A witness resumes from the head it kept on disk.
    let json = head_to_json(witness.last().unwrap(), &key.verifying_key());
    let (kept, claimed_key) = head_from_json(&json).unwrap();
    assert_eq!(claimed_key, key.verifying_key());
    let resumed = HeadWitness::resume(coordinator, key.verifying_key(), kept).unwrap();
    assert_eq!(resumed.proof_from(), 9);
}

#[test]
fn head_files_are_checked() {
    let key = coordinator_key();
    let log = AuditLog::restore(name("coordinator"), &entries());
    let head = log.sign_head(&key, at(9));
    let json = head_to_json(&head, &key.verifying_key());
    assert!(head_from_json(&json).is_ok());
    let tampered = json.replacen("\"size\": 8", "\"size\": 7", 1);
    assert_ne!(tampered, json);
    assert!(matches!(
        head_from_json(&tampered).unwrap_err(),
        AuditError::BadHeadSignature { .. }
    ));
    assert!(head_from_json("{}").is_err());
    assert!(head_from_json(&json.replace("privet-audit-head", "x")).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any mutation of an exported log either fails to parse, fails to verify, or leaves
    /// every entry as it was (a change that only touches formatting).
    #[test]
    fn a_mutated_log_never_verifies_with_other_entries(pos in any::<usize>(), byte in any::<u8>()) {
        let file = exported();
        let mut bytes = file.to_text().into_bytes();
        let i = pos % bytes.len();
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        let Ok(text) = String::from_utf8(bytes) else { return Ok(()) };
        if let Ok(parsed) = LogFile::parse(&text)
            && parsed.verify(Some(&coordinator_key().verifying_key()), &[]).is_ok()
        {
            prop_assert_eq!(parsed.entries, file.entries);
        }
    }

    /// Arbitrary text never panics the parsers.
    #[test]
    fn parsers_never_panic(text in ".{0,400}") {
        let _ = LogFile::parse(&text);
        let _ = head_from_json(&text);
        let _ = entry_from_json(&text);
        let _ = Agreement::parse(&text, None);
    }
}
