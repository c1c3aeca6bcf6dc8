//! End-to-end sessions: the computed size and sum equal the plain set computation.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use privet_psi::{
    CaseRule, ClientConfig, DpConfig, Functionality, InputSet, NormalizeOptions, PsiError,
    ServerConfig, ValueBounds,
};
use proptest::prelude::*;

/// Plain intersection size and sum.
fn plain(server: &BTreeSet<String>, client: &BTreeMap<String, i64>) -> (usize, i64) {
    let common: Vec<&String> = client.keys().filter(|k| server.contains(*k)).collect();
    (common.len(), common.iter().map(|k| client[*k]).sum())
}

fn check(server: &BTreeSet<String>, client: &BTreeMap<String, i64>, chunk: u32, seed: u64) {
    let s = InputSet::from_identifiers(server.iter(), NormalizeOptions::default()).unwrap();
    let c = InputSet::from_pairs(
        client.iter().map(|(k, v)| (k.as_str(), *v)),
        NormalizeOptions::default(),
    )
    .unwrap();
    let run = run(
        ServerConfig::default(),
        s,
        small_chunks(sum_client(), chunk),
        c,
        seed,
        false,
    )
    .unwrap();
    let (size, sum) = plain(server, client);
    assert_eq!(run.client.intersection_size, size as i64);
    assert_eq!(run.client.sum, Some(sum));
    assert_eq!(run.server.exact_intersection_size, size as u64);
    assert_eq!(run.server.client_set_size, client.len() as u64);
    assert_eq!(run.client.server_set_size, server.len() as u64);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn size_and_sum_equal_the_plain_computation(
        server in prop::collection::btree_set("[a-f]{1,3}", 1..40),
        client in prop::collection::btree_map("[a-f]{1,3}", -1000i64..1000, 1..40),
        chunk in 1u32..9,
        seed in any::<u64>(),
    ) {
        check(&server, &client, chunk, seed);
    }
}

#[test]
fn disjoint_equal_and_single_element_sets() {
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let map = |v: &[(&str, i64)]| {
        v.iter()
            .map(|(k, x)| (k.to_string(), *x))
            .collect::<BTreeMap<_, _>>()
    };
    check(&set(&["a", "b"]), &map(&[("c", 5), ("d", 7)]), 16, 1);
    check(&set(&["a", "b"]), &map(&[("a", 5), ("b", -7)]), 1, 2);
    check(&set(&["a"]), &map(&[("a", 0)]), 16, 3);
    let big: BTreeSet<String> = (0..3000).map(|i| format!("user{i}")).collect();
    let bigc: BTreeMap<String, i64> = (1500..4000).map(|i| (format!("user{i}"), i)).collect();
    check(&big, &bigc, 700, 4);
}

#[test]
fn cardinality_needs_no_values() {
    let run = run(
        ServerConfig::default(),
        ids(&["a", "b", "c"]),
        ClientConfig::new(Functionality::Cardinality),
        ids(&["b", "c", "d", "e"]),
        5,
        false,
    )
    .unwrap();
    assert_eq!(run.client.intersection_size, 2);
    assert_eq!(run.client.sum, None);
}

#[test]
fn the_intersection_is_revealed_only_to_whom_it_was_agreed() {
    let server_cfg = ServerConfig {
        allow_reveal_to_client: true,
        learn_intersection: true,
        ..ServerConfig::default()
    };
    let mut client_cfg = sum_client();
    client_cfg.request_intersection = true;
    client_cfg.offer_intersection = true;
    let server_set = ids(&["w", "x", "y", "z"]);
    let client_set = pairs(&[("q", 1), ("y", 2), ("w", 3)]);
    let run = run(
        server_cfg,
        server_set.clone(),
        client_cfg,
        client_set.clone(),
        6,
        false,
    )
    .unwrap();
    let server_names: Vec<&str> = run
        .server
        .intersection
        .unwrap()
        .iter()
        .map(|&i| server_set.identifier(i).unwrap())
        .collect();
    assert_eq!(server_names, ["w", "y"]);
    let client_names: Vec<&str> = run
        .client
        .intersection
        .unwrap()
        .iter()
        .map(|&i| client_set.identifier(i).unwrap())
        .collect();
    assert_eq!(client_names, ["y", "w"]); // input order: y is row 2, w row 3
    assert_eq!(run.client.sum, Some(5));

    // By default nobody learns it.
    let run = run_default(6);
    assert!(run.client.intersection.is_none() && run.server.intersection.is_none());
}

fn run_default(seed: u64) -> privet_psi::LocalRun {
    run(
        ServerConfig::default(),
        ids(&["w", "x"]),
        sum_client(),
        pairs(&[("w", 1)]),
        seed,
        false,
    )
    .unwrap()
}

#[test]
fn refused_terms_are_errors() {
    let err = |server_cfg: ServerConfig, client_cfg: ClientConfig, client: InputSet| {
        run(server_cfg, ids(&["a", "b"]), client_cfg, client, 7, false).unwrap_err()
    };
    // The client asks for the intersection; the server does not reveal it.
    let mut c = sum_client();
    c.request_intersection = true;
    let e = err(ServerConfig::default(), c, pairs(&[("a", 1)]));
    assert!(e.to_string().contains("does not reveal"), "{e}");
    // The server wants to learn it; the client does not offer it.
    let s = ServerConfig {
        learn_intersection: true,
        ..ServerConfig::default()
    };
    let e = err(s, sum_client(), pairs(&[("a", 1)]));
    assert!(e.to_string().contains("does not offer"), "{e}");
    // No sums here.
    let s = ServerConfig {
        allow_sum: false,
        ..ServerConfig::default()
    };
    let e = err(s, sum_client(), pairs(&[("a", 1)]));
    assert!(e.to_string().contains("does not compute sums"), "{e}");
    // Another case rule.
    let lower = InputSet::from_pairs(
        [("A", 1)],
        NormalizeOptions {
            case: CaseRule::Lower,
            ..NormalizeOptions::default()
        },
    )
    .unwrap();
    let e = err(ServerConfig::default(), sum_client(), lower);
    assert!(e.to_string().contains("case rule"), "{e}");
    // A sum without values.
    let e = privet_psi::PjcClient::new(sum_client(), ids(&["a"])).unwrap_err();
    assert!(matches!(e, PsiError::Config(_)));
    // Noise without bounds on a sum server.
    let s = ServerConfig {
        dp: Some(DpConfig::pure(1.0)),
        ..ServerConfig::default()
    };
    assert!(s.validate().is_err());
    // Noise together with revealing the intersection.
    let s = ServerConfig {
        dp: Some(DpConfig::pure(1.0)),
        bounds: Some(ValueBounds::new(0, 10).unwrap()),
        allow_reveal_to_client: true,
        ..ServerConfig::default()
    };
    assert!(s.validate().is_err());
}

#[test]
fn values_are_clamped_to_the_servers_bounds_before_encryption() {
    // A huge epsilon makes the noise zero (with overwhelming probability), so the clamped sum
    // shows exactly.
    let s = ServerConfig {
        dp: Some(DpConfig::pure(1e4)),
        bounds: Some(ValueBounds::new(-10, 100).unwrap()),
        ..ServerConfig::default()
    };
    let run = run(
        s,
        ids(&["a", "b", "c"]),
        sum_client(),
        pairs(&[("a", 5_000), ("b", -50), ("c", 7), ("d", 1_000_000)]),
        8,
        false,
    )
    .unwrap();
    assert_eq!(run.client.sum, Some(100 - 10 + 7));
    assert_eq!(run.client.intersection_size, 3);
    let (bounds, changed) = run.client.clamped.unwrap();
    assert_eq!((bounds.lower(), bounds.upper(), changed), (-10, 100, 3));
    assert_eq!(run.client.size_noise.unwrap().mechanism, "discrete_laplace");
}

#[test]
fn noisy_outcomes_stay_near_the_truth_and_the_server_knows_the_exact_size() {
    let server: Vec<String> = (0..400).map(|i| format!("id{i}")).collect();
    let client: Vec<(String, i64)> = (200..700).map(|i| (format!("id{i}"), 10)).collect();
    let s = ServerConfig {
        dp: Some(DpConfig::approximate(1.0, 1e-6)),
        bounds: Some(ValueBounds::new(0, 10).unwrap()),
        ..ServerConfig::default()
    };
    let mut far = 0;
    for seed in 0..6 {
        let run = run(
            s.clone(),
            InputSet::from_identifiers(server.iter(), NormalizeOptions::default()).unwrap(),
            sum_client(),
            InputSet::from_pairs(
                client.iter().map(|(k, v)| (k, *v)),
                NormalizeOptions::default(),
            )
            .unwrap(),
            seed,
            false,
        )
        .unwrap();
        assert_eq!(run.server.exact_intersection_size, 200);
        let size_ci = run.client.size_noise.unwrap().ci95_half_width as i64;
        let sum_ci = run.client.sum_noise.unwrap().ci95_half_width as i64;
        assert_eq!(run.client.sum_noise.unwrap().mechanism, "discrete_gaussian");
        let size_err = (run.client.intersection_size - 200).abs();
        let sum_err = (run.client.sum.unwrap() - 2000).abs();
        // Far outside the 95% interval (x3) would be a calibration bug.
        assert!(
            size_err <= 3 * size_ci && sum_err <= 3 * sum_ci,
            "{size_err} {sum_err}"
        );
        far += usize::from(size_err > 0 || sum_err > 0);
    }
    assert!(far > 0, "no noise was added in six runs");
}
