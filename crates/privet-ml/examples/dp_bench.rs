//! Benchmark harness for `bench/dp/opacus_vs_privet.sh`: encodes a CSV exactly as `privet train`
//! does (seeded 80/20 split, encoder fitted on the training rows), exports the encoded matrices
//! for the Opacus side, calibrates the noise for each target epsilon, and times privet's
//! non-private training and DP-SGD on the same MLP, printing one JSON object.
//!
//! ```text
//! cargo run --release -p privet-ml --example dp_bench -- \
//!     --csv ../shared/data/digits.csv --label digit --hidden 64 --lot 64 --epochs 20 \
//!     --lr 0.5 --clip 1.0 --delta 1e-5 --epsilons 1,3,8 --seeds 3 --export target/dp-bench/digits
//! ```
//!
//! Not a test and not part of the library: a benchmark driver.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Instant;

use privet_data::{CsvOptions, Dataset, Encoder, load_csv, train_test_split};
use privet_dp::AccountantKind;
use privet_ml::{
    DpSchedule, DpSgdConfig, ModelSpec, Network, NoiseSampler, OptimizerConfig, TrainConfig,
    calibrate_noise, privacy_spent,
};
use serde_json::json;

struct Args {
    csv: PathBuf,
    label: String,
    categorical: Vec<String>,
    hidden: Vec<usize>,
    lot: usize,
    epochs: usize,
    lr: f32,
    clip: f32,
    delta: f64,
    epsilons: Vec<f64>,
    seeds: u64,
    split_seed: u64,
    export: Option<PathBuf>,
    noise: NoiseSampler,
}

fn list<T: std::str::FromStr>(s: &str) -> Vec<T>
where
    T::Err: std::fmt::Debug,
{
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.trim().parse().unwrap())
        .collect()
}

fn parse() -> Args {
    let mut a = Args {
        csv: PathBuf::new(),
        label: String::new(),
        categorical: Vec::new(),
        hidden: vec![64],
        lot: 256,
        epochs: 10,
        lr: 0.5,
        clip: 1.0,
        delta: 1e-5,
        epsilons: vec![1.0, 3.0, 8.0],
        seeds: 3,
        split_seed: 42,
        export: None,
        noise: NoiseSampler::Snapped,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let (k, v) = (pair[0].as_str(), pair[1].as_str());
        match k {
            "--csv" => a.csv = v.into(),
            "--label" => a.label = v.into(),
            "--categorical" => a.categorical = list(v),
            "--hidden" => a.hidden = list(v),
            "--lot" => a.lot = v.parse().unwrap(),
            "--epochs" => a.epochs = v.parse().unwrap(),
            "--lr" => a.lr = v.parse().unwrap(),
            "--clip" => a.clip = v.parse().unwrap(),
            "--delta" => a.delta = v.parse().unwrap(),
            "--epsilons" => a.epsilons = list(v),
            "--seeds" => a.seeds = v.parse().unwrap(),
            "--split-seed" => a.split_seed = v.parse().unwrap(),
            "--export" => a.export = Some(v.into()),
            "--noise" => {
                a.noise = match v {
                    "exact" => NoiseSampler::Exact,
                    "snapped" => NoiseSampler::Snapped,
                    other => panic!("unknown noise sampler {other}"),
                }
            }
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn write_f32(path: PathBuf, v: &[f32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn write_u32(path: PathBuf, v: &[u32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let a = parse();
    // Exactly privet-sim's prepare(): seeded split, encoder fitted on the training rows.
    let opts = CsvOptions::new(a.label.clone()).with_categorical(a.categorical.clone());
    let table = load_csv(&a.csv, &opts).unwrap();
    let (train_rows, test_rows) = train_test_split(table.num_rows(), 0.2, a.split_seed).unwrap();
    let encoder = Encoder::fit(&table, &train_rows).unwrap();
    let all = Dataset {
        x: encoder.transform(&table).unwrap(),
        y: encoder.encode_labels(&table).unwrap(),
        num_classes: encoder.num_classes(),
        feature_names: encoder.feature_names(),
    };
    let to_u32 = |rows: &[usize]| rows.iter().map(|&r| r as u32).collect::<Vec<u32>>();
    let train = all.gather(&to_u32(&train_rows));
    let test = all.gather(&to_u32(&test_rows));
    let (n, d, k) = (train.x.rows, train.x.cols, train.num_classes);

    let schedule = DpSchedule::new(n, a.lot, a.epochs).unwrap();
    let sigmas: Vec<f64> = a
        .epsilons
        .iter()
        .map(|&e| calibrate_noise(&schedule, e, a.delta, AccountantKind::Pld).unwrap())
        .collect();
    let spent: Vec<_> = sigmas
        .iter()
        .map(|&s| privacy_spent(&schedule, s, a.delta).unwrap())
        .collect();

    if let Some(dir) = &a.export {
        std::fs::create_dir_all(dir).unwrap();
        write_f32(dir.join("x_train.f32"), &train.x.data);
        write_u32(dir.join("y_train.u32"), &train.y);
        write_f32(dir.join("x_test.f32"), &test.x.data);
        write_u32(dir.join("y_test.u32"), &test.y);
    }

    let net = Network::new(
        ModelSpec::Mlp {
            hidden: a.hidden.clone(),
            activation: privet_ml::Activation::Relu,
        },
        d,
        k,
    )
    .unwrap();
    let rows: Vec<u32> = (0..n as u32).collect();
    let optimizer = OptimizerConfig::sgd(a.lr);
    let mut rng = privet_ml::noise_rng().unwrap();

    // Non-private: the same MLP, optimizer and epochs, batches of the lot size.
    let mut np_rate = Vec::new();
    let mut np_acc = Vec::new();
    for seed in 0..a.seeds {
        let cfg = TrainConfig {
            epochs: a.epochs,
            batch_size: a.lot,
            optimizer: optimizer.clone(),
            proximal_mu: None,
            seed,
        };
        let init = net.init(seed);
        let t = Instant::now();
        let (p, _) = net.train(&init, &train.x, &train.y, &rows, &cfg).unwrap();
        let secs = t.elapsed().as_secs_f64();
        np_rate.push((n * a.epochs) as f64 / secs);
        np_acc.push(net.evaluate(&p, &test.x, &test.y).unwrap().accuracy);
    }

    // DP-SGD at each epsilon.
    let mut dp = Vec::new();
    let mut dp_rates_all = Vec::new();
    for (i, (&eps, &sigma)) in a.epsilons.iter().zip(&sigmas).enumerate() {
        let cfg = DpSgdConfig {
            epochs: a.epochs,
            lot_size: a.lot,
            clip_norm: a.clip,
            noise_multiplier: sigma,
            optimizer: optimizer.clone(),
            noise: a.noise,
        };
        let mut accs = Vec::new();
        let mut rates = Vec::new();
        for seed in 0..a.seeds {
            let init = net.init(seed);
            let t = Instant::now();
            let (p, stats) = net
                .train_dp(
                    &init,
                    &train.x,
                    &train.y,
                    &rows,
                    &cfg,
                    &mut rng,
                    &mut |_, _, _| Ok(()),
                )
                .unwrap();
            let secs = t.elapsed().as_secs_f64();
            // Examples per second counts the examples actually drawn into lots (about N per
            // epoch), as Opacus's side does.
            rates.push(stats.examples_processed as f64 / secs);
            accs.push(net.evaluate(&p, &test.x, &test.y).unwrap().accuracy);
        }
        dp_rates_all.extend(rates.iter().copied());
        dp.push(json!({
            "epsilon_target": eps,
            "sigma": sigma,
            "epsilon_pld": spent[i].epsilon_pld,
            "epsilon_rdp": spent[i].epsilon_rdp,
            "accuracy": accs.clone(),
            "accuracy_median": median(&mut accs.clone()),
            "examples_per_second": rates.clone(),
        }));
    }
    let out = json!({
        "dataset": a.csv.file_name().map(|f| f.to_string_lossy().into_owned()),
        "train_rows": n,
        "test_rows": test.x.rows,
        "features": d,
        "classes": k,
        "output_units": if k == 2 { 1 } else { k },
        "hidden": a.hidden,
        "params": net.num_params(),
        "lot_size": a.lot,
        "noise_sampler": a.noise.name(),
        "epochs": a.epochs,
        "lr": a.lr,
        "clip": a.clip,
        "delta": a.delta,
        "q": schedule.sampling_probability,
        "steps": schedule.steps,
        "steps_per_epoch": schedule.steps_per_epoch,
        "nonprivate": {
            "accuracy": np_acc.clone(),
            "accuracy_median": median(&mut np_acc.clone()),
            "examples_per_second": np_rate.clone(),
            "examples_per_second_median": median(&mut np_rate.clone()),
        },
        "dp": dp,
        "dp_examples_per_second_median": median(&mut dp_rates_all.clone()),
    });
    println!("{out}");
}
