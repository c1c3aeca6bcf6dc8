//! Poisson client sampling for DP-FedAvg (issue 11, item 9): the job key, the accounting
//! (Poisson-subsampled Gaussian, add/remove, RDP and PLD, against privet-dp), skipped draws and
//! their extra delta, and reading a version-1 privacy state.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use privet_dp::pld::{PldAccountant, PldConfig};
use privet_dp::rdp::{Conversion, RdpAccountant};
use privet_dp::{Delta, SampledGaussian};
use privet_dpfedavg::{DpAggregator, DpSampling, binomial_below};
use privet_fl::{AggregateTransform, SampleSize};
use privet_job::{Job, privacy_plan};
use privet_sim::{Silent, prepare, simulate};

fn job(clients: usize, federation: &str, privacy: &str) -> Result<Job, String> {
    Job::from_toml(&format!(
        "[data]\nsource = \"synthetic\"\nalpha = 0.0\nbeta = 0.0\nrows_per_client = 20\n\
         [partition]\nclients = {clients}\n[model]\nkind = \"logreg\"\n[train]\nepochs = 1\n\
         batch_size = 10\nlr = 0.1\n[federation]\nseed = 3\n{federation}\n{privacy}"
    ))
    .map_err(|e| e.to_string())
}

const PRIVACY: &str = "[privacy]\nclip = 1.0\nnoise_multiplier = 1.0\ndelta = 1e-5\n";

fn rdp(events: &[SampledGaussian], delta: f64) -> f64 {
    let mut acc = RdpAccountant::new();
    for e in events {
        acc.compose(e).unwrap();
    }
    acc.epsilon(Delta::new(delta).unwrap(), Conversion::Improved)
        .epsilon
}

fn pld(event: &SampledGaussian, delta: f64) -> f64 {
    let mut acc = PldAccountant::new(PldConfig::default()).unwrap();
    acc.compose(event).unwrap();
    acc.epsilon(Delta::new(delta).unwrap()).unwrap()
}

#[test]
fn the_sampling_key_and_its_default_under_privacy() {
    let sample = |fed: &str, privacy: &str| job(20, fed, privacy).map(|j| j.federation.sample);
    // Under [privacy], a fraction means Poisson sampling at that rate...
    assert_eq!(
        sample("rounds = 1\nfraction = 0.25", PRIVACY).unwrap(),
        SampleSize::Poisson(0.25)
    );
    // ... unless the job fixes the count or asks for fixed sampling.
    assert_eq!(
        sample("rounds = 1\nclients_per_round = 5", PRIVACY).unwrap(),
        SampleSize::Count(5)
    );
    assert_eq!(
        sample("rounds = 1\nfraction = 0.25\nsampling = \"fixed\"", PRIVACY).unwrap(),
        SampleSize::Fraction(0.25)
    );
    // Without [privacy], fixed unless asked.
    assert_eq!(
        sample("rounds = 1\nfraction = 0.25", "").unwrap(),
        SampleSize::Fraction(0.25)
    );
    assert_eq!(
        sample("rounds = 1\nfraction = 0.25\nsampling = \"poisson\"", "").unwrap(),
        SampleSize::Poisson(0.25)
    );
    let err = sample(
        "rounds = 1\nclients_per_round = 5\nsampling = \"poisson\"",
        PRIVACY,
    )
    .unwrap_err();
    assert!(err.contains("Poisson sampling takes `fraction`"), "{err}");
    let err = sample("rounds = 1\nsampling = \"bernoulli\"", PRIVACY).unwrap_err();
    assert!(
        err.contains("`sampling` must be \"poisson\" or \"fixed\""),
        "{err}"
    );
}

/// The issue's figure: one round at q = 0.2, z = 1 costs about 8.7 with fixed-size sampling
/// (replace-one, multiplier z/2) and far less with Poisson sampling (add/remove, multiplier z).
#[test]
fn poisson_accounting_is_the_poisson_subsampled_gaussian_at_multiplier_z() {
    let fixed = job(50, "rounds = 1\nclients_per_round = 10", PRIVACY).unwrap();
    let poisson = job(50, "rounds = 1\nfraction = 0.2", PRIVACY).unwrap();
    let pf = privacy_plan(&fixed, 50).unwrap().unwrap();
    let pp = privacy_plan(&poisson, 50).unwrap().unwrap();
    assert_eq!(pf.sampling, DpSampling::FixedSize);
    assert_eq!(pp.sampling, DpSampling::Poisson { q: 0.2 });
    let eps_fixed = rdp(&[SampledGaussian::fixed_size(0.2, 0.5, 1).unwrap()], 1e-5);
    let eps_poisson = rdp(&[SampledGaussian::poisson(0.2, 1.0, 1).unwrap()], 1e-5);
    assert!((8.0..9.5).contains(&eps_fixed), "{eps_fixed}");
    assert!(
        eps_poisson < eps_fixed / 3.0,
        "{eps_poisson} vs {eps_fixed}"
    );
    let eps_poisson_pld = pld(&SampledGaussian::poisson(0.2, 1.0, 1).unwrap(), 1e-5);
    eprintln!(
        "one round, q = 0.2, z = 1: fixed {eps_fixed}, Poisson {eps_poisson} (RDP), {eps_poisson_pld} (PLD)"
    );
    assert!(eps_poisson_pld < eps_poisson);

    // A whole simulated run: every round charged as Poisson(q, ~z), RDP and PLD as privet-dp.
    let poisson = job(50, "rounds = 3\nfraction = 0.2", PRIVACY).unwrap();
    let data = prepare(&poisson).unwrap();
    let out = simulate(&poisson, &data, &mut Silent).unwrap();
    assert_eq!(out.rounds.len(), 3);
    for (i, r) in out.rounds.iter().enumerate() {
        let p = r.privacy.as_ref().unwrap();
        assert_eq!(p.sampling, "poisson");
        assert_eq!(p.sampling_probability, 0.2);
        assert!(!p.skipped);
        // z over the sensitivity S (not 2S), less the grid's tiny inflation.
        assert!(
            (p.accountant_sigma - 1.0).abs() < 1e-6,
            "{}",
            p.accountant_sigma
        );
        let event = SampledGaussian::poisson(0.2, p.accountant_sigma, i as u64 + 1).unwrap();
        assert!((p.cumulative_epsilon - rdp(&[event], 1e-5)).abs() < 1e-9);
        let by_pld = pld(&event, 1e-5);
        let got = p.cumulative_epsilon_pld.unwrap();
        assert!((got - by_pld).abs() < 1e-9, "{got} vs {by_pld}");
        assert!(
            got < p.cumulative_epsilon,
            "PLD {got} vs RDP {}",
            p.cumulative_epsilon
        );
        // 49 neighbours' worth of clients, q = 0.2, min_clients 1: P(empty) = 0.8^49.
        let beta = 0.8f64.powi(49);
        let want = (1.0 + p.cumulative_epsilon.exp()) * beta * (i as f64 + 1.0);
        assert!(
            (p.skip_delta / want - 1.0).abs() < 1e-9,
            "{} vs {want}",
            p.skip_delta
        );
    }
    let json = privet_sim::metrics_json(&out.rounds, serde_json::json!({}));
    assert_eq!(json["privacy"]["sampling"], "poisson");
    assert_eq!(json["rounds"][0]["privacy"]["skipped"], false);
}

/// A small federation with min_clients above some draws: those rounds are skipped (nothing
/// released), yet charged; the skip mass gives the extra delta; the job still completes.
#[test]
fn too_small_draws_skip_their_round_and_are_charged() {
    let fed = "rounds = 4\nfraction = 0.4\nmin_clients = 3";
    let j = job(6, fed, PRIVACY).unwrap();
    let data = prepare(&j).unwrap();
    let out = simulate(&j, &data, &mut Silent).unwrap();
    let skipped: Vec<_> = out
        .rounds
        .iter()
        .filter(|r| r.privacy.as_ref().is_some_and(|p| p.skipped))
        .collect();
    let completed = out.rounds.iter().filter(|r| r.aggregated).count();
    assert_eq!(completed, 4);
    // P(fewer than 3 of 6 at q = 0.4) = 0.54: seed 3 skips some draws.
    assert!(!skipped.is_empty());
    for r in &skipped {
        assert!(r.selected < 3, "{}", r.selected);
        assert!(!r.aggregated);
        assert_eq!(r.privacy.as_ref().unwrap().contributors, 0);
    }
    let last = out.rounds.last().unwrap().privacy.as_ref().unwrap();
    let draws = out.rounds.len() as u64;
    // Every draw is one step of the Poisson-subsampled Gaussian.
    let event = SampledGaussian::poisson(0.4, last.accountant_sigma, draws).unwrap();
    assert!((last.cumulative_epsilon - rdp(&[event], 1e-5)).abs() < 1e-9);
    // Skip mass: P(Binomial(5, 0.4) < 3) per draw.
    let beta = binomial_below(5, 0.4, 3);
    let direct: f64 = (0..3)
        .map(|j| {
            let c = [1.0, 5.0, 10.0][j];
            c * 0.4f64.powi(j as i32) * 0.6f64.powi(5 - j as i32)
        })
        .sum();
    assert!((beta - direct).abs() < 1e-12, "{beta} vs {direct}");
    let want = (1.0 + last.cumulative_epsilon.exp()) * beta * draws as f64;
    assert!((last.skip_delta / want - 1.0).abs() < 1e-9);
    // That extra delta is large here, and a budget at delta 1e-5 cannot absorb it.
    let budget = format!("{PRIVACY}budget = {{ epsilon = 50.0, delta = 1e-5 }}\n");
    let j = job(6, fed, &budget).unwrap();
    let err = simulate(&j, &data, &mut Silent).unwrap_err().to_string();
    assert!(err.contains("privacy budget exhausted: round 1"), "{err}");
}

#[test]
fn binomial_tails_are_exact_at_the_edges() {
    assert_eq!(binomial_below(10, 0.3, 0), 0.0);
    assert_eq!(binomial_below(2, 0.3, 3), 1.0);
    assert!((binomial_below(10, 0.3, 1) - 0.7f64.powi(10)).abs() < 1e-15);
    assert!((binomial_below(3000, 0.1, 1) - 0.9f64.powi(3000)).abs() < 1e-150);
    // Symmetric binomial: P(X < 5) + P(X = 5) / 2 = 1/2 for n = 10, q = 1/2.
    let half = binomial_below(10, 0.5, 5) + 252.0 / 1024.0 / 2.0;
    assert!((half - 0.5).abs() < 1e-12);
}

/// A privacy state written before Poisson sampling (version 1: no sampling, no skip mass)
/// still restores, as fixed-size events.
#[test]
fn a_version_1_privacy_state_restores() {
    let j = job(50, "rounds = 3\nclients_per_round = 10", PRIVACY).unwrap();
    let plan = privacy_plan(&j, 50).unwrap().unwrap();
    let mut dp = DpAggregator::with_noise_key(plan, 4, None, [1; 32]).unwrap();
    let v1 = r#"{"version":1,"clip":1.0,"rounds":2,"events":[{"q":0.2,"sigma":0.5,"steps":2}]}"#;
    dp.restore_state(v1).unwrap();
    let spent = dp.spent_epsilon(1e-5).unwrap();
    let want = rdp(&[SampledGaussian::fixed_size(0.2, 0.5, 2).unwrap()], 1e-5);
    assert!((spent - want).abs() < 1e-9);
    let saved = dp.state().unwrap();
    assert!(
        saved.contains("\"version\":2") && saved.contains("\"sampling\":\"fixed\""),
        "{saved}"
    );
    let bad = r#"{"version":2,"clip":1.0,"rounds":1,"skip_mass":0.0,"events":[{"q":0.2,"sigma":0.5,"steps":1,"sampling":"other"}]}"#;
    assert!(dp.restore_state(bad).is_err());
}

/// The accounting of `bench/dp/poisson_vs_fixed.sh`'s federation (Adult, 3,000 clients, 30
/// rounds, 300 per round or q = 0.1, z = 1, delta 1e-5) at equal noise: what each sampling
/// scheme is charged, from the job's own privacy plan.
#[test]
fn the_adult_bench_federation_is_charged_far_less_under_poisson_sampling() {
    let plan = |fed: &str| {
        let j = job(3000, fed, PRIVACY).unwrap();
        privacy_plan(&j, 3000).unwrap().unwrap()
    };
    let fixed = plan("rounds = 30\nclients_per_round = 300");
    let poisson = plan("rounds = 30\nfraction = 0.1");
    assert_eq!(
        (fixed.sampling, fixed.clients_per_round),
        (DpSampling::FixedSize, 300)
    );
    assert_eq!(poisson.sampling, DpSampling::Poisson { q: 0.1 });
    let z = 1.0;
    let eps_fixed = rdp(
        &[SampledGaussian::fixed_size(0.1, z / 2.0, 30).unwrap()],
        1e-5,
    );
    let event = SampledGaussian::poisson(0.1, z, 30).unwrap();
    let (eps_rdp, eps_pld) = (rdp(&[event], 1e-5), pld(&event, 1e-5));
    eprintln!(
        "adult bench federation, 30 rounds, z = 1, delta 1e-5: fixed-size {eps_fixed:.3}, \
         Poisson {eps_rdp:.3} (RDP), {eps_pld:.3} (PLD)"
    );
    assert!(eps_rdp < eps_fixed / 3.0 && eps_pld < eps_rdp);
}
