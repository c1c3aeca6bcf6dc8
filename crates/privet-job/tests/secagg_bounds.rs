//! SecAgg+'s quantization bounds come from the federation unless the job sets them.
#![allow(clippy::unwrap_used)]

use privet_job::{Job, secagg_config};

fn job(federation: &str, extra: &str) -> Job {
    Job::from_toml(&format!(
        "[data]\npath = \"x.csv\"\nlabel = \"y\"\n[model]\nkind = \"logreg\"\n\
         [federation]\nrounds = 2\nseed = 1\nsecure_aggregation = \"secagg+\"\n{federation}\n{extra}"
    ))
    .unwrap()
}

#[test]
fn unset_bounds_come_from_the_clients_per_round_and_the_largest_client() {
    let j = job("clients_per_round = 5", "");
    let cfg = secagg_config(&j, 100, Some(569)).unwrap().unwrap();
    assert_eq!(cfg.max_clients, 5);
    assert_eq!(cfg.max_weight, 569);
    let defaults = privet_secagg::SecAggConfig::default();
    // The finer grid the derivation buys: (2^31 - 1) / 5 levels instead of / 1000.
    assert!(cfg.levels() > 100 * defaults.levels());
    // Without a known largest client, the weight bound keeps its default.
    let cfg = secagg_config(&j, 100, None).unwrap().unwrap();
    assert_eq!(cfg.max_weight, defaults.max_weight);
    // A fraction is resolved against the federation; SecAgg+'s minimum of 3 holds.
    let j = job("fraction = 0.1", "");
    assert_eq!(
        secagg_config(&j, 200, None).unwrap().unwrap().max_clients,
        20
    );
    let j = job("clients_per_round = 3", "");
    assert_eq!(secagg_config(&j, 3, None).unwrap().unwrap().max_clients, 3);
}

#[test]
fn bounds_the_job_sets_are_kept() {
    let j = job(
        "clients_per_round = 5",
        "[secure_aggregation]\nmax_clients = 50\nmax_weight = 7\n",
    );
    let cfg = secagg_config(&j, 100, Some(569)).unwrap().unwrap();
    assert_eq!((cfg.max_clients, cfg.max_weight), (50, 7));
    let j = job(
        "clients_per_round = 5",
        "[secure_aggregation]\nmax_weight = 7\n",
    );
    let cfg = secagg_config(&j, 100, Some(569)).unwrap().unwrap();
    assert_eq!((cfg.max_clients, cfg.max_weight), (5, 7));
}

#[test]
fn under_dp_every_weight_is_one_and_poisson_rounds_may_hold_everyone() {
    let j = job(
        "fraction = 0.1\nmin_clients = 2",
        "[privacy]\nclip = 1.0\nnoise_multiplier = 1.0\ndelta = 1e-5\n",
    );
    let cfg = secagg_config(&j, 100, Some(569)).unwrap().unwrap();
    assert_eq!(cfg.max_weight, 1);
    // DP-FedAvg samples clients by Poisson coins by default: a round's size is random, up to
    // the whole federation.
    assert!(j.federation.sample.is_poisson());
    assert_eq!(cfg.max_clients, 100);
    let j = job(
        "clients_per_round = 10
min_clients = 2
sampling = \"fixed\"",
        "[privacy]\nclip = 1.0\nnoise_multiplier = 1.0\ndelta = 1e-5\n",
    );
    assert_eq!(
        secagg_config(&j, 100, None).unwrap().unwrap().max_clients,
        10
    );
}

#[test]
fn a_derived_bound_that_cannot_fit_the_modulus_is_a_clear_error() {
    let j = job(
        "clients_per_round = 1000",
        "[secure_aggregation]\nmodulus_bits = 24\n",
    );
    let e = secagg_config(&j, 1000, Some(1 << 20)).unwrap_err();
    assert!(e.to_string().contains("derived from the federation"), "{e}");
}
