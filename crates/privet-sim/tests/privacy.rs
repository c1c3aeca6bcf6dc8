//! Client-level DP (DP-FedAvg): noise scale, adaptive clipping, accounting against privet-dp,
//! budget stops, accuracy, distributed noise under SecAgg+, and checkpoint round trips.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use privet_dp::SampledGaussian;
use privet_dp::budget::BudgetTracker;
use privet_dp::calibrate::AccountantKind;
use privet_dp::rdp::{Conversion, RdpAccountant};
use privet_dpfedavg::{DpAggregator, DpClient, RoundPrivacy};
use privet_fl::engine::{
    AggregationProtocol, ClientProtocol, Coordinator, EngineConfig, Event, JobStatus, LocalTrainer,
    PlainAggregation, PlainClient, RoundOutcome,
};
use privet_fl::{
    Admission, AggregateTransform, ClientId, ClientParams, ClientSampler, ClientTrainConfig,
    FlError, StrategyConfig, TrainMetrics, UpdateContext, UpdateTransform, WeightedSum,
};
use privet_job::{Job, JobStack, privacy_plan, secagg_config};
use privet_sim::{Silent, prepare, simulate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn synthetic_job(clients: usize, per_round: usize, rounds: u32, privacy: &str) -> Job {
    Job::from_toml(&format!(
        "[data]\nsource = \"synthetic\"\nalpha = 0.0\nbeta = 0.0\nrows_per_client = 40\n\
         [partition]\nclients = {clients}\n[model]\nkind = \"logreg\"\n[train]\nepochs = 1\n\
         batch_size = 10\nlr = 0.1\n[federation]\nrounds = {rounds}\nclients_per_round = \
         {per_round}\nseed = 3\n{privacy}"
    ))
    .unwrap()
}

fn std_dev(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
}

fn rdp_epsilon(events: &[SampledGaussian], delta: f64) -> f64 {
    let mut acc = RdpAccountant::new();
    for e in events {
        acc.compose(e).unwrap();
    }
    acc.epsilon(privet_dp::Delta::new(delta).unwrap(), Conversion::Improved)
        .epsilon
}

#[test]
fn central_noise_on_the_sum_has_std_z_times_clip() {
    let job = synthetic_job(
        100,
        10,
        5,
        "[privacy]\nclip = 0.5\nnoise_multiplier = 1.3\ndelta = 1e-5\n",
    );
    let plan = privacy_plan(&job, 100).unwrap().unwrap();
    let dim = 40_000;
    let mut dp = DpAggregator::with_noise_key(plan, dim, None, [9; 32]).unwrap();
    assert_eq!(
        dp.admit_round(1, 10, 100, &mut ClientParams::new())
            .unwrap(),
        Admission::Admit
    );
    let mut sum = WeightedSum::zeros(dim);
    sum.num_clients = 10;
    sum.total_weight = 10.0;
    dp.apply(1, &mut sum).unwrap();
    let sd = std_dev(&sum.sum);
    // Standard error of a sample std over 40,000 draws is about 0.35%; allow 2%.
    assert!(
        (sd / (1.3 * 0.5) - 1.0).abs() < 0.02,
        "noise std {sd}, want 0.65"
    );
    // DP-FedAvg's fixed denominator: the number of clients sampled.
    assert_eq!(sum.total_weight, 10.0);
    let record = dp.round_record(1).unwrap();
    assert!((record.noise_std / 0.65 - 1.0).abs() < 1e-6);
    // Replace-one sensitivity 2C: the accountant's multiplier is z / 2.
    assert!((record.accountant_sigma / 0.65 - 1.0).abs() < 1e-6);
    // A round that was not admitted is refused.
    assert!(dp.apply(2, &mut WeightedSum::zeros(dim)).is_err());
}

/// Clients whose update norms are spread uniformly over [0, 2]: the median norm is 1.
#[test]
fn adaptive_clip_converges_to_the_target_quantile_of_norms() {
    let job = synthetic_job(
        1000,
        100,
        5,
        "[privacy]\nadaptive_clip = { initial = 0.05, target_quantile = 0.5, learning_rate = 0.2 }\n\
         noise_multiplier = 1.0\ndelta = 1e-5\n",
    );
    let plan = privacy_plan(&job, 1000).unwrap().unwrap();
    assert_eq!(plan.count_noise, Some(5.0));
    let dim = 4;
    let client = DpClient::new(plan.clone());
    let mut dp = DpAggregator::with_noise_key(plan, dim, None, [1; 32]).unwrap();
    assert_eq!(dp.extra_coordinates(), 1);
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let mut clips = Vec::new();
    for round in 1..=150u32 {
        let mut published = ClientParams::new();
        assert_eq!(
            dp.admit_round(round, 100, 1000, &mut published).unwrap(),
            Admission::Admit
        );
        let mut sum = WeightedSum::zeros(dim + 1);
        for c in 0..100 {
            let norm: f64 = rng.random_range(0.0..2.0);
            let mut delta = vec![(norm / 2.0) as f32; dim];
            let mut ctx = UpdateContext::new(round, ClientId(c), &published);
            client.apply(&mut ctx, &mut delta).unwrap();
            assert_eq!(delta.len(), dim + 1);
            for (s, d) in sum.sum.iter_mut().zip(&delta) {
                *s += f64::from(*d);
            }
            sum.num_clients += 1;
            sum.total_weight += 1.0;
        }
        dp.apply(round, &mut sum).unwrap();
        assert_eq!(sum.sum.len(), dim);
        clips.push(dp.dp_state().clip);
    }
    assert!(clips[0] < 0.1, "{:?}", &clips[..3]);
    let tail = &clips[100..];
    let mean = tail.iter().sum::<f64>() / tail.len() as f64;
    assert!(
        (mean - 1.0).abs() < 0.15,
        "clip settled at {mean}, want about 1"
    );
}

#[test]
fn epsilon_per_round_and_total_equals_privet_dp_and_budget_stops_in_time() {
    let privacy = "[privacy]\nclip = 1.0\nnoise_multiplier = 1.2\ndelta = 1e-5\n";
    let job = synthetic_job(50, 10, 6, privacy);
    let data = prepare(&job).unwrap();
    let out = simulate(&job, &data, &mut Silent).unwrap();
    assert_eq!(out.rounds.len(), 6);
    assert!(out.budget_stop.is_none());
    let mut tracker = BudgetTracker::new(
        privet_dp::PrivacyBudget::new(1e6, 1e-5).unwrap(),
        AccountantKind::Rdp,
    );
    let mut events = Vec::new();
    for r in &out.rounds {
        let p = r.privacy.as_ref().unwrap();
        assert_eq!(p.sampling_probability, 0.2);
        assert!(
            (p.accountant_sigma / 0.6 - 1.0).abs() < 1e-6,
            "{}",
            p.accountant_sigma
        );
        let one = SampledGaussian::fixed_size(0.2, p.accountant_sigma, 1).unwrap();
        events.push(one);
        tracker.record(&one).unwrap();
        assert!((p.epsilon - rdp_epsilon(&[one], 1e-5)).abs() < 1e-9);
        assert!((p.cumulative_epsilon - rdp_epsilon(&events, 1e-5)).abs() < 1e-9);
        assert!((p.cumulative_epsilon - tracker.spent_epsilon().unwrap()).abs() < 1e-9);
    }
    let total = out.rounds[5].privacy.as_ref().unwrap().cumulative_epsilon;
    let by_formula = rdp_epsilon(&[SampledGaussian::fixed_size(0.2, 0.6, 6).unwrap()], 1e-5);
    assert!(
        (total - by_formula).abs() / by_formula < 1e-6,
        "{total} vs {by_formula}"
    );

    // A budget between the epsilon of 3 and 4 rounds: exactly 3 rounds run.
    let sigma = out.rounds[0].privacy.as_ref().unwrap().accountant_sigma;
    let eps = |r: u64| rdp_epsilon(&[SampledGaussian::fixed_size(0.2, sigma, r).unwrap()], 1e-5);
    let budget = (eps(3) + eps(4)) / 2.0;
    let job = synthetic_job(
        50,
        10,
        6,
        &format!("{privacy}budget = {{ epsilon = {budget}, delta = 1e-5 }}\n"),
    );
    let out = simulate(&job, &data, &mut Silent).unwrap();
    assert_eq!(out.rounds.len(), 3);
    let reason = out.budget_stop.clone().unwrap();
    assert!(
        reason.contains("privacy budget exhausted: round 4"),
        "{reason}"
    );
    let last = out.rounds[2].privacy.as_ref().unwrap();
    assert!(last.cumulative_epsilon <= budget);
    assert_eq!(last.budget_stop.as_deref(), Some(reason.as_str()));
    let json = privet_sim::metrics_json(&out.rounds, serde_json::json!({}));
    assert_eq!(json["privacy"]["status"], "budget_exhausted");
    assert_eq!(
        json["rounds"][2]["privacy"]["cumulative_epsilon"],
        last.cumulative_epsilon
    );
    assert!(privet_sim::metrics_csv(&out.rounds).starts_with("round,"));

    // A budget too small for one round: nothing runs, and the error says why.
    let job = synthetic_job(
        50,
        10,
        6,
        &format!(
            "{privacy}budget = {{ epsilon = {}, delta = 1e-5 }}\n",
            eps(1) / 2.0
        ),
    );
    let err = simulate(&job, &data, &mut Silent).unwrap_err().to_string();
    assert!(err.contains("privacy budget exhausted: round 1"), "{err}");
}

fn adult_job(privacy: &str) -> Option<Job> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/adult.csv");
    if !path.exists() {
        eprintln!("skipped: {} is not there", path.display());
        return None;
    }
    Some(
        Job::from_toml(&format!(
            "[data]\npath = \"{}\"\nlabel = \"income\"\ncategorical = [\"type_employer\", \
             \"education\", \"marital\", \"occupation\", \"relationship\", \"race\", \"sex\", \
             \"country\"]\n[partition]\nscheme = \"iid\"\nclients = 3000\n[model]\nkind = \
             \"logreg\"\n[train]\nepochs = 2\nbatch_size = 4\nlr = 0.5\n[federation]\nrounds = 30\n\
             clients_per_round = 300\nseed = 3\n{privacy}",
            path.display()
        ))
        .unwrap(),
    )
}

/// UCI Adult over 3,000 clients (about 8 training rows each), 300 per round: DP-FedAvg at
/// epsilon 4 stays close to plain FedAvg and well above the majority class (about 75%).
#[test]
fn a_dp_run_on_adult_reaches_good_accuracy_at_moderate_epsilon() {
    let Some(plain) = adult_job("") else { return };
    let data = prepare(&plain).unwrap();
    let base = simulate(&plain, &data, &mut Silent).unwrap();
    let job = adult_job("[privacy]\nclip = 1.0\ntarget_epsilon = 4.0\ndelta = 1e-5\n").unwrap();
    let out = simulate(&job, &data, &mut Silent).unwrap();
    let last = out.rounds.last().unwrap();
    let p = last.privacy.as_ref().unwrap();
    assert!(
        p.cumulative_epsilon <= 4.0 && p.cumulative_epsilon > 3.9,
        "{}",
        p.cumulative_epsilon
    );
    let (acc, base_acc) = (
        last.test_accuracy,
        base.rounds.last().unwrap().test_accuracy,
    );
    eprintln!(
        "adult: DP accuracy {acc:.4} at epsilon {:.3} (z = {:.3}); without DP {base_acc:.4}",
        p.cumulative_epsilon, p.noise_multiplier
    );
    assert!(acc > 0.80, "DP accuracy {acc}");
    assert!(acc > base_acc - 0.03, "DP {acc} vs plain {base_acc}");
}

#[test]
fn job_files_check_the_privacy_section() {
    let err = |privacy: &str| {
        Job::from_toml(&format!(
            "[data]\nsource = \"synthetic\"\n[model]\nkind = \"logreg\"\n[federation]\nrounds = \
             2\n{privacy}"
        ))
        .unwrap_err()
        .to_string()
    };
    assert!(err("[privacy]\nclip = 1.0\ndelta = 1e-5\n").contains("noise_multiplier"));
    assert!(err("[privacy]\nnoise_multiplier = 1.0\ndelta = 1e-5\n").contains("`clip`"));
    assert!(err("[privacy]\nclip = 1.0\nnoise_multiplier = 1.0\n").contains("`delta`"));
    assert!(
        err("[privacy]\nmode = \"distributed\"\nclip = 1.0\nnoise_multiplier = 1\ndelta = 1e-5\n")
            .contains("secagg+")
    );
    assert!(
        err("[privacy]\nclip = 1.0\nnoise_multiplier = 1\ndelta = 1e-5\nepsilon = 2\n")
            .contains("epsilon")
    );
    let robust = Job::from_toml(
        "[data]\nsource = \"synthetic\"\n[model]\nkind = \"logreg\"\n[strategy]\nkind = \
         \"median\"\n[federation]\nrounds = 2\n[privacy]\nclip = 1.0\nnoise_multiplier = 1\n\
         delta = 1e-5\n",
    )
    .unwrap_err()
    .to_string();
    assert!(robust.contains("robust"), "{robust}");
}

/// A trainer that moves every parameter to a fixed value per client.
struct Fixed(Vec<f32>);
impl LocalTrainer for Fixed {
    fn fit(
        &mut self,
        _round: u32,
        params: &[f32],
        _config: &ClientTrainConfig,
    ) -> Result<(Vec<f32>, TrainMetrics), FlError> {
        let local = params.iter().zip(&self.0).map(|(p, d)| p + d).collect();
        let metrics = TrainMetrics {
            loss: 0.5,
            num_examples: 7,
        };
        Ok((local, metrics))
    }
}

/// Runs `engine` until it finishes or `rounds` more rounds completed, with clients answering
/// through `clients` and training with per-client fixed deltas (privet-fl's harness loop);
/// returns the outcomes.
fn drive(
    engine: &mut Coordinator,
    clients: &mut [Box<dyn ClientProtocol>],
    deltas: &[Vec<f32>],
    transforms: &[Box<dyn UpdateTransform>],
    rounds: u32,
) -> Vec<RoundOutcome> {
    let ids: Vec<ClientId> = (0..clients.len() as u32).map(ClientId).collect();
    let mut outcomes = Vec::new();
    let mut done = 0;
    while !engine.is_finished() && done < rounds {
        let actions = engine.start_round(&ids).unwrap();
        let driven = privet_fl::harness::drive(engine, actions, |to, msg| {
            let mut trainer = Fixed(deltas[to.0 as usize].clone());
            let answer = clients[to.0 as usize]
                .respond(&msg, &mut trainer, transforms)
                .unwrap();
            vec![Event::Received {
                from: to,
                msg: answer,
            }]
        });
        match &driven.outcome {
            RoundOutcome::Completed(_) => done += 1,
            other => panic!("{other:?}"),
        }
        outcomes.push(driven.outcome);
    }
    outcomes
}

#[test]
fn distributed_noise_under_secagg_has_the_planned_scale() {
    let n = 10usize;
    let dim = 3000usize;
    let job = Job::from_toml(&format!(
        "[data]\nsource = \"synthetic\"\n[partition]\nclients = {n}\n[model]\nkind = \"logreg\"\n\
         [federation]\nrounds = 1\nclients_per_round = {n}\nmin_clients = 8\nsecure_aggregation \
         = \"secagg+\"\n[secure_aggregation]\nclipping_range = 1.0\nmax_clients = 16\n\
         modulus_bits = 32\n[privacy]\nmode = \"distributed\"\nclip = 0.5\nnoise_multiplier = \
         1.0\ndelta = 1e-5\n"
    ))
    .unwrap();
    let plan = privacy_plan(&job, n).unwrap().unwrap();
    let cfg = secagg_config(&job, n, None).unwrap().unwrap();
    assert_eq!(cfg.max_weight, 1);
    let per_client = cfg.distributed_dp_noise.unwrap();
    assert!((per_client - 0.5 / 8f64.sqrt()).abs() < 1e-12);
    let dp = DpAggregator::new(plan, dim, Some(&cfg)).unwrap();

    let mut keys = privet_secagg::KeyMap::new();
    let signing: Vec<privet_secagg::SigningKey> = (0..n)
        .map(|i| privet_secagg::SigningKey::from_bytes(&[i as u8 + 1; 32]))
        .collect();
    for (i, k) in signing.iter().enumerate() {
        keys.insert(ClientId(i as u32), k.verifying_key());
    }
    let directory: Arc<dyn privet_secagg::KeyDirectory> = Arc::new(keys);
    let protocol = privet_secagg::SecAggProtocol::new(cfg.clone(), Arc::clone(&directory)).unwrap();
    let config = EngineConfig {
        rounds: 1,
        sampler: ClientSampler {
            size: privet_fl::SampleSize::Count(n),
            min_clients: 1,
            seed: 1,
        },
        min_clients: 8,
        max_retries: 0,
    };
    let strategy = StrategyConfig::FedAvg.build().unwrap();
    let mut engine = Coordinator::new(config, strategy, Box::new(protocol), vec![0.0; dim])
        .unwrap()
        .with_aggregate_transform(Box::new(dp))
        .unwrap();
    let mut clients: Vec<Box<dyn ClientProtocol>> = signing
        .into_iter()
        .enumerate()
        .map(|(i, key)| {
            Box::new(
                privet_secagg::SecAggClient::new(
                    ClientId(i as u32),
                    key,
                    Arc::clone(&directory),
                    cfg.clone(),
                )
                .unwrap(),
            ) as Box<dyn ClientProtocol>
        })
        .collect();
    // Client i moves every coordinate by 0.001 * i: well within the clip.
    let deltas: Vec<Vec<f32>> = (0..n).map(|i| vec![0.001 * i as f32; dim]).collect();
    let transforms = JobStack::new(&job, n).unwrap().client_transforms();
    let outcomes = drive(&mut engine, &mut clients, &deltas, &transforms, 1);
    assert_eq!(engine.completed_rounds(), 1);
    // global = (Σ Δ + noise) / k, so k * global - Σ Δ is what the coordinator's sum carried
    // beyond the clients' updates: the noise of n clients, std sqrt(n) * per-client std.
    let true_sum = 0.001 * (0..n).sum::<usize>() as f64;
    let noise: Vec<f64> = engine
        .global()
        .iter()
        .map(|&g| f64::from(g) * n as f64 - true_sum)
        .collect();
    let mean = noise.iter().sum::<f64>() / dim as f64;
    let want = (n as f64).sqrt() * per_client;
    let sd = std_dev(&noise);
    assert!(
        mean.abs() < 4.0 * want / (dim as f64).sqrt(),
        "noise mean {mean}"
    );
    assert!(
        (sd / want - 1.0).abs() < 0.05,
        "noise std {sd}, planned {want}"
    );
    let record: RoundPrivacy = outcomes[0]
        .report()
        .details
        .decode(RoundPrivacy::NAME)
        .unwrap()
        .unwrap();
    assert_eq!(record.mode, "distributed");
    assert_eq!(record.contributors, n);
    assert!(
        (record.noise_std / want - 1.0).abs() < 1e-3,
        "{}",
        record.noise_std
    );
    // With the planned 8 contributors the multiplier would be z/2; 10 give a bit more.
    assert!(record.accountant_sigma > 0.5 && record.accountant_sigma < 0.5 * (10f64 / 8.0).sqrt());
}

#[test]
fn distributed_rounds_with_too_few_contributors_fail_before_unmasking() {
    let job = Job::from_toml(
        "[data]\nsource = \"synthetic\"\n[partition]\nclients = 6\n[model]\nkind = \"logreg\"\n\
         [federation]\nrounds = 2\nclients_per_round = 6\nmin_clients = 6\ndropout = 0.3\nseed = \
         2\nsecure_aggregation = \"secagg+\"\n[secure_aggregation]\nclipping_range = 2.0\n\
         max_clients = 8\n[privacy]\nmode = \"distributed\"\nclip = 1.0\nnoise_multiplier = \
         1.0\ndelta = 1e-5\n",
    )
    .unwrap();
    let data = prepare(&job).unwrap();
    // With 6 of 6 needed and 30% dropouts, rounds fail at the end of a stage: never unmasked,
    // so nothing is accounted.
    match simulate(&job, &data, &mut Silent) {
        Err(e) => assert!(e.to_string().contains("client(s) left"), "{e}"),
        Ok(out) => {
            for r in &out.rounds {
                assert_eq!(r.privacy.is_some(), r.aggregated);
            }
        }
    }
}

fn adaptive_engine(key: [u8; 32]) -> (Coordinator, Vec<Box<dyn UpdateTransform>>, Job) {
    let job = synthetic_job(
        20,
        5,
        5,
        "[privacy]\nadaptive_clip = { initial = 0.2, target_quantile = 0.5, learning_rate = 0.3, \
         count_noise = 2.0 }\nnoise_multiplier = 0.8\ndelta = 1e-5\n",
    );
    let plan = privacy_plan(&job, 20).unwrap().unwrap();
    let dp = DpAggregator::with_noise_key(plan, 6, None, key).unwrap();
    let transforms = JobStack::new(&job, 20).unwrap().client_transforms();
    let engine = Coordinator::new(
        engine_config(),
        StrategyConfig::fed_adam().build().unwrap(),
        Box::new(PlainAggregation::new()),
        vec![0.0; 6],
    )
    .unwrap()
    .with_aggregate_transform(Box::new(dp))
    .unwrap();
    (engine, transforms, job)
}

fn engine_config() -> EngineConfig {
    EngineConfig {
        rounds: 5,
        sampler: ClientSampler {
            size: privet_fl::SampleSize::Count(5),
            min_clients: 1,
            seed: 4,
        },
        min_clients: 1,
        max_retries: 0,
    }
}

#[test]
fn privacy_state_round_trips_through_the_checkpoint() {
    let deltas: Vec<Vec<f32>> = (0..20)
        .map(|i| {
            (0..6)
                .map(|j| 0.05 * ((i * 7 + j) % 11) as f32 - 0.2)
                .collect()
        })
        .collect();
    let key = [42; 32];

    let (mut straight, transforms, _) = adaptive_engine(key);
    let mut cs: Vec<Box<dyn ClientProtocol>> = (0..20)
        .map(|i| Box::new(PlainClient { id: ClientId(i) }) as Box<dyn ClientProtocol>)
        .collect();
    drive(&mut straight, &mut cs, &deltas, &transforms, 5);
    assert_eq!(straight.status(), &JobStatus::Completed);

    let (mut first, transforms, _) = adaptive_engine(key);
    drive(&mut first, &mut cs, &deltas, &transforms, 3);
    let checkpoint = first.checkpoint();
    let state = checkpoint.transform_state.clone().unwrap();
    assert!(state.contains("\"rounds\":3"), "{state}");

    // Resuming without the transform is refused, and so is a transform without its state.
    let bare = Coordinator::resume(
        engine_config(),
        StrategyConfig::fed_adam().build().unwrap(),
        Box::new(PlainAggregation::new()),
        checkpoint.clone(),
    );
    assert!(bare.unwrap().start_round(&[ClientId(0)]).is_err());
    let mut stateless = checkpoint.clone();
    stateless.transform_state = None;
    let (_, _, job) = adaptive_engine(key);
    let plan = privacy_plan(&job, 20).unwrap().unwrap();
    let refused = Coordinator::resume(
        engine_config(),
        StrategyConfig::fed_adam().build().unwrap(),
        Box::new(PlainAggregation::new()),
        stateless,
    )
    .unwrap()
    .with_aggregate_transform(Box::new(
        DpAggregator::with_noise_key(plan.clone(), 6, None, key).unwrap(),
    ));
    assert!(refused.is_err());

    let dp = DpAggregator::with_noise_key(plan, 6, None, key).unwrap();
    let transforms = JobStack::new(&job, 20).unwrap().client_transforms();
    let mut resumed = Coordinator::resume(
        engine_config(),
        StrategyConfig::fed_adam().build().unwrap(),
        Box::new(PlainAggregation::new()),
        checkpoint,
    )
    .unwrap()
    .with_aggregate_transform(Box::new(dp))
    .unwrap();
    drive(&mut resumed, &mut cs, &deltas, &transforms, 5);
    assert_eq!(resumed.status(), &JobStatus::Completed);
    assert_eq!(resumed.global(), straight.global());
    assert_eq!(
        resumed.checkpoint().transform_state,
        straight.checkpoint().transform_state
    );
}

#[test]
fn a_protocol_that_reveals_only_sums_still_gets_unit_weights() {
    // The engine counts every plain update once under DP, whatever it reports.
    let job = synthetic_job(
        10,
        10,
        1,
        "[privacy]\nclip = 10.0\nnoise_multiplier = 0.001\ndelta = 1e-5\n",
    );
    let plan = privacy_plan(&job, 10).unwrap().unwrap();
    let dp = DpAggregator::with_noise_key(plan, 2, None, [3; 32]).unwrap();
    let mut engine = Coordinator::new(
        EngineConfig {
            rounds: 1,
            sampler: ClientSampler {
                size: privet_fl::SampleSize::Count(10),
                min_clients: 1,
                seed: 1,
            },
            min_clients: 1,
            max_retries: 0,
        },
        StrategyConfig::FedAvg.build().unwrap(),
        Box::new(PlainAggregation::new()) as Box<dyn AggregationProtocol>,
        vec![0.0; 2],
    )
    .unwrap()
    .with_aggregate_transform(Box::new(dp))
    .unwrap();
    // No DP client transform: updates report 7 examples each, but count once.
    let mut cs: Vec<Box<dyn ClientProtocol>> = (0..10)
        .map(|i| Box::new(PlainClient { id: ClientId(i) }) as Box<dyn ClientProtocol>)
        .collect();
    let deltas: Vec<Vec<f32>> = (0..10).map(|i| vec![i as f32; 2]).collect();
    drive(&mut engine, &mut cs, &deltas, &[], 1);
    let mean = 45.0 / 10.0;
    assert!(
        (engine.global()[0] - mean).abs() < 0.01,
        "{:?}",
        engine.global()
    );
}
