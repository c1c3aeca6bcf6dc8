//! Cost of one SecAgg+ round: time at one client (all four stages), time at the coordinator,
//! and bytes per client, through privet's real round engine.
//!
//! ```text
//! cargo run --release -p privet-secagg --example secagg_bench [-- --quick] > secagg.json
//! cargo run --release -p privet-secagg --example secagg_bench -- --n 10,100 --d 100000 \
//!     [--runs 5] [--dropout 0,0.05] > custom.json
//! ```
//!
//! With `--n`, `--d`, `--runs` or `--dropout`, only those cases are measured (JSON under
//! `results`; bench/secagg/flower_vs_privet.sh uses this). Without them, two parts, each the
//! median of several rounds:
//! - **headline**: n = 10 and 100 clients, update length d = 100,000, without dropouts and
//!   with 5% of the clients dropping after sending their shares (their pairwise masks must be
//!   rebuilt);
//! - **scaling**: n = 10, 100, 1000 at d = 10,000 with 5% dropouts, with the costs divided by
//!   `(k + 1) d` (client: one self mask and k pairwise masks) and `(n + dropped · k) d`
//!   (coordinator: n masked inputs and self masks, k pairwise masks per dropped client) to show
//!   `O(log n · d)` and `O(n log n · d)`.
//!
//! Clients run one after another, so their times do not compete; the coordinator's unmasking
//! uses rayon. Timings are wall-clock inside `respond` (client) and inside `start_round` /
//! `handle` (coordinator: engine plus protocol). Local training is a trivial function, so the
//! client time is the protocol's (plus computing the delta). `round_ms` is the coordinator's
//! time plus every client's: the whole round's work in one process, clients one after another.
//! Each case is one job whose clients and coordinator persist from round to round, as in a
//! federation (and as in Flower's simulation, which the comparison script runs the same way);
//! its first round is an untimed warm-up. JSON goes to stdout, a table
//! to stderr.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use privet_fl::engine::{
    Action, ClientProtocol, Coordinator, EngineConfig, Event, FromClient, LocalTrainer,
    RoundOutcome, ToClient,
};
use privet_fl::{
    ClientId, ClientSampler, ClientTrainConfig, FlError, SampleSize, StrategyConfig, TrainMetrics,
};
use privet_secagg::{KeyMap, MaskPrg, SecAggClient, SecAggConfig, SecAggProtocol, SigningKey};
use serde_json::{Value, json};

/// "Training": a fixed small move of every parameter.
struct Step(f32);

impl LocalTrainer for Step {
    fn fit(
        &mut self,
        _round: u32,
        params: &[f32],
        _config: &ClientTrainConfig,
    ) -> Result<(Vec<f32>, TrainMetrics), FlError> {
        let local = params.iter().map(|p| p + self.0).collect();
        Ok((
            local,
            TrainMetrics {
                loss: 0.5,
                num_examples: 100,
            },
        ))
    }
}

/// One round's measurements.
struct Sample {
    k: usize,
    t: usize,
    /// Per client: seconds inside `respond`, bytes up, protocol bytes down, dropped.
    clients: Vec<(f64, usize, usize, bool)>,
    coordinator: f64,
    masks_rebuilt: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs a job of `rounds` rounds with the same `n` clients (as a federation does: clients and
/// the coordinator persist across rounds) and measures each round.
fn run_job(
    n: u32,
    d: usize,
    dropout: f64,
    prg: MaskPrg,
    rounds: u32,
) -> Result<Vec<Sample>, Box<dyn std::error::Error>> {
    let config = SecAggConfig {
        mask_prg: prg,
        ..SecAggConfig::default()
    };
    let ids: Vec<ClientId> = (1..=n).map(ClientId).collect();
    let keys: Vec<SigningKey> = ids
        .iter()
        .map(|id| {
            let mut seed = [7u8; 32];
            seed[..4].copy_from_slice(&id.0.to_le_bytes());
            SigningKey::from_bytes(&seed)
        })
        .collect();
    let directory: Arc<KeyMap> = Arc::new(
        ids.iter()
            .zip(&keys)
            .map(|(&id, k)| (id, k.verifying_key()))
            .collect(),
    );
    let protocol = SecAggProtocol::new(config.clone(), directory.clone())?;
    let monitor = protocol.monitor();
    let engine = EngineConfig {
        rounds,
        sampler: ClientSampler {
            size: SampleSize::Fraction(1.0),
            min_clients: 1,
            seed: 1,
        },
        min_clients: 1,
        max_retries: 0,
    };
    let strategy = StrategyConfig::FedAvg.build()?;
    let mut coordinator = Coordinator::new(engine, strategy, Box::new(protocol), vec![0.0; d])?;
    let mut clients: Vec<SecAggClient> = ids
        .iter()
        .zip(keys)
        .map(|(&id, key)| SecAggClient::new(id, key, directory.clone(), config.clone()))
        .collect::<Result<_, _>>()?;
    // round(δ n) clients (at least one if δ > 0), spread over the ids, drop after sending
    // their shares.
    let count = if dropout > 0.0 {
        ((dropout * f64::from(n)).round() as u32).max(1)
    } else {
        0
    };
    let step = n.checked_div(count).unwrap_or(1);
    let drops =
        |c: ClientId| count > 0 && (c.0 - 1).is_multiple_of(step) && (c.0 - 1) / step < count;

    let mut samples = Vec::new();
    for _ in 0..rounds {
        let mut stats: Vec<(f64, usize, usize, bool)> =
            ids.iter().map(|&c| (0.0, 0, 0, drops(c))).collect();
        let mut coordinator_secs = 0.0;
        let started = Instant::now();
        let mut queue: VecDeque<Action> = coordinator.start_round(&ids)?.into();
        coordinator_secs += started.elapsed().as_secs_f64();
        let mut outcome = None;
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Send { to, msg } => {
                    let i = (to.0 - 1) as usize;
                    let stage = match &msg {
                        ToClient::Protocol { stage, payload, .. } => {
                            stats[i].2 += payload.len();
                            *stage
                        }
                        _ => 0,
                    };
                    let event = if stage == 2 && drops(to) {
                        Event::Dropped { client: to }
                    } else {
                        let started = Instant::now();
                        let answer = clients[i].respond(&msg, &mut Step(0.01), &[])?;
                        stats[i].0 += started.elapsed().as_secs_f64();
                        if let FromClient::Protocol { payload, .. } = &answer {
                            stats[i].1 += payload.len();
                        }
                        Event::Received {
                            from: to,
                            msg: answer,
                        }
                    };
                    let started = Instant::now();
                    let more = coordinator.handle(event)?;
                    coordinator_secs += started.elapsed().as_secs_f64();
                    queue.extend(more);
                }
                Action::RoundFinished(o) => outcome = Some(o),
                _ => {}
            }
        }
        match outcome {
            Some(RoundOutcome::Completed(_)) => {}
            other => return Err(format!("the round did not complete: {other:?}").into()),
        }
        let info = monitor.last_round_info().ok_or("no round info")?;
        let params = info.params.ok_or("no parameters")?;
        samples.push(Sample {
            k: params.k,
            t: params.t,
            clients: stats,
            coordinator: coordinator_secs,
            masks_rebuilt: info.masks_rebuilt,
        });
    }
    Ok(samples)
}

/// Runs `runs` rounds and summarizes them.
fn measure(
    n: u32,
    d: usize,
    dropout: f64,
    runs: usize,
    prg: MaskPrg,
) -> Result<Value, Box<dyn std::error::Error>> {
    let mut client_ms = Vec::new();
    let mut coordinator_ms = Vec::new();
    let mut round_ms = Vec::new();
    let mut last = None;
    // One job of runs + 1 rounds; the first is an untimed warm-up (page faults, allocator,
    // rayon's thread pool).
    let samples = run_job(n, d, dropout, prg, runs as u32 + 1)?;
    for s in samples.into_iter().skip(1) {
        // The median client of this round (dropped clients did less work: leave them out).
        let full: Vec<f64> = s.clients.iter().filter(|c| !c.3).map(|c| c.0).collect();
        client_ms.push(median(full) * 1e3);
        coordinator_ms.push(s.coordinator * 1e3);
        let all_clients: f64 = s.clients.iter().map(|c| c.0).sum();
        round_ms.push((s.coordinator + all_clients) * 1e3);
        last = Some(s);
    }
    let s = last.ok_or("no runs")?;
    let full = s.clients.iter().filter(|c| !c.3);
    let bytes_up = median(full.clone().map(|c| c.1 as f64).collect());
    let bytes_down = median(full.map(|c| c.2 as f64).collect());
    let client = median(client_ms.clone());
    let coord = median(coordinator_ms.clone());
    let streams = (s.k + 1) as f64 * d as f64;
    let dropped = s.clients.iter().filter(|c| c.3).count() as f64;
    let coord_work = (f64::from(n) + dropped * s.k as f64) * d as f64;
    Ok(json!({
        "n": n,
        "d": d,
        "dropout": dropout,
        "k": s.k,
        "t": s.t,
        "dropped": dropped,
        "masks_rebuilt": s.masks_rebuilt,
        "runs": runs,
        "client_ms_median": client,
        "client_ms_runs": client_ms,
        "coordinator_ms_median": coord,
        "coordinator_ms_runs": coordinator_ms,
        "round_ms_median": median(round_ms.clone()),
        "round_ms_runs": round_ms,
        "client_upload_bytes": bytes_up,
        "client_protocol_download_bytes": bytes_down,
        "model_download_bytes": d * 4,
        "plain_upload_bytes": d * 4,
        "client_ns_per_mask_word": client * 1e6 / streams,
        "coordinator_ns_per_work_word": coord * 1e6 / coord_work,
    }))
}

/// Mask expansion alone: `(k + 1) d` words (a client's masks at n = 10 and 100) with each
/// generator, on one thread and on rayon's whole pool; the median of `runs`.
fn prg_speed(d: usize, runs: usize) -> Result<Value, Box<dyn std::error::Error>> {
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let mut rows = Vec::new();
    for (n, k) in [(10u32, 9usize), (100, 22)] {
        let keys: Vec<[u8; 32]> = (0..=k).map(|i| [i as u8 + 1; 32]).collect();
        for prg in [MaskPrg::ChaCha20, MaskPrg::Aes128Ctr] {
            for threads in [1usize, rayon::current_num_threads()] {
                let mut ms = Vec::new();
                for _ in 0..=runs {
                    let mut acc = vec![0u64; d];
                    let started = Instant::now();
                    if threads == 1 {
                        one.install(|| prg.add_masks(&keys, 32, &mut acc))?;
                    } else {
                        prg.add_masks(&keys, 32, &mut acc)?;
                    }
                    ms.push(started.elapsed().as_secs_f64() * 1e3);
                    std::hint::black_box(&acc);
                }
                ms.remove(0); // warm-up
                let med = median(ms.clone());
                let words = ((k + 1) * d) as f64;
                eprintln!(
                    "masks n={n} k={k} d={d} {prg:>10} threads={threads}: {med:.3} ms, {:.3} ns/word",
                    med * 1e6 / words
                );
                rows.push(json!({
                    "n": n, "k": k, "d": d, "prg": prg.name(), "threads": threads,
                    "ms_median": med, "ms_runs": ms, "ns_per_word": med * 1e6 / words,
                }));
            }
        }
    }
    Ok(json!({
        "hardware_aes": privet_secagg::hardware_aes(),
        "mask_expansion": rows,
    }))
}

/// Options of a custom run (`--n`, `--d`, `--runs`, `--dropout`, `--prg`).
struct Custom {
    ns: Vec<u32>,
    d: usize,
    runs: usize,
    dropouts: Vec<f64>,
    prg: MaskPrg,
    prg_speed: bool,
}

/// A comma-separated list of numbers.
fn list<T: std::str::FromStr>(flag: &str, value: &str) -> Result<Vec<T>, String> {
    value
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.trim()
                .parse()
                .map_err(|_| format!("{flag}: cannot parse {p:?}"))
        })
        .collect::<Result<Vec<T>, String>>()
        .and_then(|v| {
            if v.is_empty() {
                Err(format!("{flag}: empty list"))
            } else {
                Ok(v)
            }
        })
}

/// Parses the command line: whether `--quick` was given, and the custom run if any.
fn parse_args(args: &[String]) -> Result<(bool, Option<Custom>), String> {
    let mut quick = false;
    let mut custom = Custom {
        ns: vec![10, 100],
        d: 100_000,
        runs: 5,
        dropouts: vec![0.0],
        prg: MaskPrg::default(),
        prg_speed: false,
    };
    let mut is_custom = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => quick = true,
            "--json" => {} // JSON always goes to stdout
            "--n" => {
                custom.ns = list("--n", value()?)?;
                is_custom = true;
            }
            "--d" => {
                custom.d = value()?
                    .parse()
                    .map_err(|_| "--d: not a number".to_string())?;
                is_custom = true;
            }
            "--runs" => {
                custom.runs = value()?
                    .parse()
                    .map_err(|_| "--runs: not a number".to_string())?;
                is_custom = true;
            }
            "--dropout" => {
                custom.dropouts = list("--dropout", value()?)?;
                is_custom = true;
            }
            "--prg" => {
                custom.prg = match value()?.as_str() {
                    "chacha20" => MaskPrg::ChaCha20,
                    "aes128-ctr" => MaskPrg::Aes128Ctr,
                    other => return Err(format!("--prg: unknown generator {other:?}")),
                };
                is_custom = true;
            }
            "--prg-speed" => {
                custom.prg_speed = true;
                is_custom = true;
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?} (expected --quick, --n LIST, --d N, --runs R, \
                     --dropout LIST, --prg chacha20|aes128-ctr, --prg-speed, --json)"
                ));
            }
        }
    }
    if custom.ns.iter().any(|&n| n < 3) {
        return Err("--n: every client count must be at least 3".into());
    }
    if custom.d == 0 || custom.runs == 0 {
        return Err("--d and --runs must be positive".into());
    }
    if custom.dropouts.iter().any(|f| !(0.0..0.5).contains(f)) {
        return Err("--dropout: fractions must be in [0, 0.5)".into());
    }
    Ok((quick, is_custom.then_some(custom)))
}

/// Prints the summary table of a list of measured cases to stderr.
fn print_table(rows: &[&Value]) {
    eprintln!(
        "{:>5} {:>7} {:>5} {:>4} {:>4} {:>10} {:>14} {:>10} {:>9} {:>12} {:>12}",
        "n",
        "d",
        "drop",
        "k",
        "t",
        "client ms",
        "coordinator ms",
        "round ms",
        "up bytes",
        "cli ns/word",
        "coo ns/word"
    );
    for row in rows {
        let f = |key: &str| row[key].as_f64().unwrap_or(f64::NAN);
        eprintln!(
            "{:>5} {:>7} {:>5} {:>4} {:>4} {:>10.2} {:>14.2} {:>10.2} {:>9} {:>12.2} {:>12.2}",
            f("n"),
            f("d"),
            f("dropped"),
            f("k"),
            f("t"),
            f("client_ms_median"),
            f("coordinator_ms_median"),
            f("round_ms_median"),
            f("client_upload_bytes"),
            f("client_ns_per_mask_word"),
            f("coordinator_ns_per_work_word"),
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (quick, custom) = parse_args(&args)?;
    if let Some(c) = custom {
        if c.prg_speed {
            let report = prg_speed(c.d, c.runs)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(());
        }
        let mut results = Vec::new();
        for &n in &c.ns {
            for &dropout in &c.dropouts {
                eprintln!("n={n} d={} dropout={dropout} runs={}", c.d, c.runs);
                results.push(measure(n, c.d, dropout, c.runs, c.prg)?);
            }
        }
        let report = json!({
            "benchmark": "privet-secagg one round (SecAgg+), default SecAggConfig",
            "command": format!(
                "cargo run --release -p privet-secagg --example secagg_bench -- {}",
                args.join(" ")
            ),
            "threads": std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1),
            "config": format!("{:?}", SecAggConfig { mask_prg: c.prg, ..SecAggConfig::default() }),
            "hardware_aes": privet_secagg::hardware_aes(),
            "rayon_threads": rayon::current_num_threads(),
            "results": results,
        });
        print_table(&results.iter().collect::<Vec<_>>());
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let (d_big, d_small, runs) = if quick {
        (10_000, 2_000, 1)
    } else {
        (100_000, 10_000, 5)
    };
    let mut headline = Vec::new();
    for n in [10u32, 100] {
        for dropout in [0.0, 0.05] {
            eprintln!("headline n={n} d={d_big} dropout={dropout}");
            headline.push(measure(n, d_big, dropout, runs, MaskPrg::default())?);
        }
    }
    let mut scaling = Vec::new();
    for n in [10u32, 100, 1000] {
        eprintln!("scaling n={n} d={d_small}");
        let runs = if n >= 1000 { runs.min(3) } else { runs };
        scaling.push(measure(n, d_small, 0.05, runs, MaskPrg::default())?);
    }
    let report = json!({
        "benchmark": "privet-secagg one round (SecAgg+), default SecAggConfig",
        "command": "cargo run --release -p privet-secagg --example secagg_bench",
        "threads": std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1),
        "config": format!("{:?}", SecAggConfig::default()),
        "headline": headline,
        "scaling": scaling,
    });
    let rows = [&report["headline"], &report["scaling"]];
    print_table(
        &rows
            .iter()
            .filter_map(|r| r.as_array())
            .flatten()
            .collect::<Vec<_>>(),
    );
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
