//! SecAgg+ switched on by one line of the job: the run matches plain aggregation up to
//! quantization, and the report names n, k and t per round.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use privet_job::Job;
use privet_sim::{Silent, prepare, simulate};

fn job(secure: bool, dropout: f64) -> Job {
    let csv = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/breast_cancer.csv");
    let line = if secure {
        "secure_aggregation = \"secagg+\""
    } else {
        ""
    };
    Job::from_toml(&format!(
        "[data]\npath = \"{csv}\"\nlabel = \"benign\"\n[partition]\nscheme = \"iid\"\nclients = \
         12\n[model]\nkind = \"logreg\"\n[train]\nepochs = 1\nbatch_size = 16\nlr = 0.05\n\
         [federation]\nrounds = 3\nclients_per_round = 12\nseed = 5\ndropout = {dropout}\n{line}\n"
    ))
    .unwrap()
}

#[test]
fn secure_aggregation_matches_plain_aggregation_up_to_quantization() {
    let plain_job = job(false, 0.0);
    let data = prepare(&plain_job).unwrap();
    let plain = simulate(&plain_job, &data, &mut Silent).unwrap();
    let secure = simulate(&job(true, 0.0), &data, &mut Silent).unwrap();
    let worst = plain
        .params
        .iter()
        .zip(&secure.params)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    // Fixed point with 2^-20-ish steps over three rounds: far below any model difference.
    assert!(worst < 1e-3, "secure and plain models differ by {worst}");
    assert!(plain.rounds.iter().all(|r| r.secure_aggregation.is_none()));
    for r in &secure.rounds {
        let (n, k, t) = r.secure_aggregation.unwrap();
        assert_eq!(n, 12);
        assert!(k >= t && t > k / 2, "{n} {k} {t}");
    }
}

#[test]
fn secure_aggregation_survives_dropouts_and_refuses_robust_strategies() {
    let j = job(true, 0.25);
    let data = prepare(&j).unwrap();
    let out = simulate(&j, &data, &mut Silent).unwrap();
    assert!(out.rounds.iter().any(|r| r.dropped > 0));
    assert!(out.rounds.iter().any(|r| r.aggregated));
    let csv = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/breast_cancer.csv");
    let err = Job::from_toml(&format!(
        "[data]\npath = \"{csv}\"\nlabel = \"benign\"\n[model]\nkind = \"logreg\"\n[strategy]\n\
         kind = \"median\"\n[federation]\nrounds = 1\nsecure_aggregation = \"secagg+\"\n"
    ))
    .unwrap_err();
    assert!(err.to_string().contains("individual updates"), "{err}");
}
