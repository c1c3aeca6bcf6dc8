//! `privet pjc`: Private Join and Compute, the intersection size and sum of two organisations'
//! lists, with nothing else revealed.
//!
//! ```text
//! privet pjc local A.csv B.csv --id COL [--id-b COL] [--value COL] [--epsilon E [--delta D]]
//!                  [--lower L --upper U] [--case preserve|lower] [--duplicates refuse|merge]
//!                  [--json]
//! privet pjc serve --config pjc.toml [--insecure-dev]
//! privet pjc join --server URL --csv F --id COL [--value COL] [--certs DIR --name NAME]
//!                 [--case ...] [--duplicates ...] [--json]
//! ```
//!
//! `local` runs both parties in this process over the same encoded messages a network would
//! carry (and reports their bytes): A.csv is the server (identifiers only), B.csv the client
//! (identifiers, and values from `--value` for the sum). The work is done by `privet-psi`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use privet_psi::wire::WireLimits;
use privet_psi::{
    CaseRule, ClientConfig, ClientOutput, CsvSpec, DpConfig, Duplicates, Functionality, InputSet,
    NoiseInfo, NormalizeOptions, PjcClient, PjcServer, PsiError, ServerConfig, ValueBounds,
    run_local,
};
use serde_json::{Value, json};

/// `privet pjc` subcommands.
#[derive(Debug, Subcommand)]
pub enum PjcCommand {
    /// Run both parties in this process: A.csv is the server (identifiers), B.csv the client
    /// (identifiers and values); prints what the client learns.
    Local(LocalArgs),
    /// Serve PJC sessions (gRPC, mutual TLS) over the identifier list in pjc.toml until SIGTERM;
    /// this side is the server (identifiers only; it adds the noise its config sets).
    Serve {
        /// pjc.toml (listen, [data], [privacy], [policy], [tls]).
        #[arg(long)]
        config: PathBuf,
        /// Plain text without certificates: development only, logs a warning.
        #[arg(long)]
        insecure_dev: bool,
    },
    /// Join a PJC server as the client: learn the intersection size (and sum with --value).
    Join(JoinArgs),
}

/// Arguments of `privet pjc join`.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The server's address.
    #[arg(long)]
    pub server: String,
    /// This party's CSV.
    #[arg(long)]
    pub csv: PathBuf,
    /// Identifier column.
    #[arg(long)]
    pub id: String,
    /// Value column: computes the intersection sum (integers).
    #[arg(long)]
    pub value: Option<String>,
    /// Directory with `ca.pem` and this party's `NAME.pem` / `NAME.key` (a node certificate).
    #[arg(long, default_value = "certs", env = "PRIVET_CERTS")]
    pub certs: PathBuf,
    /// This party's certificate name.
    #[arg(long)]
    pub name: privet_identity::Name,
    /// Plain text without certificates (development only; logs a warning).
    #[arg(long)]
    pub insecure_dev: bool,
    /// Identifier case rule (must be the server's).
    #[arg(long, value_enum, default_value_t = CaseArg::Preserve)]
    pub case: CaseArg,
    /// What to do with repeated identifiers (merge adds their values).
    #[arg(long, value_enum, default_value_t = DupArg::Refuse)]
    pub duplicates: DupArg,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// The identifier and privacy options both parties' commands share.
#[derive(Debug, Args)]
pub struct SessionArgs {
    /// Total epsilon of the released size and sum (noise added by the server); without it the
    /// exact values are released.
    #[arg(long)]
    pub epsilon: Option<f64>,
    /// Delta: discrete Gaussian noise instead of discrete Laplace.
    #[arg(long, requires = "epsilon")]
    pub delta: Option<f64>,
    /// Public lower bound of each identifier's value (values are clamped to it).
    #[arg(long, allow_negative_numbers = true)]
    pub lower: Option<i64>,
    /// Public upper bound of each identifier's value.
    #[arg(long, allow_negative_numbers = true)]
    pub upper: Option<i64>,
    /// Identifier case rule (identifiers are always trimmed).
    #[arg(long, value_enum, default_value_t = CaseArg::Preserve)]
    pub case: CaseArg,
    /// What to do with repeated identifiers (merge adds their values).
    #[arg(long, value_enum, default_value_t = DupArg::Refuse)]
    pub duplicates: DupArg,
}

/// Case rule on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CaseArg {
    /// Case is significant.
    Preserve,
    /// Lower-case everything.
    Lower,
}

/// Duplicate rule on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DupArg {
    /// A repeated identifier is an error.
    Refuse,
    /// Rows of one identifier become one; their values are added.
    Merge,
}

/// Arguments of `privet pjc local`.
#[derive(Debug, Args)]
pub struct LocalArgs {
    /// The server's CSV (identifiers only are used).
    pub a: PathBuf,
    /// The client's CSV (identifiers and, with --value, values).
    pub b: PathBuf,
    /// Identifier column (in both files unless --id-b is given).
    #[arg(long)]
    pub id: String,
    /// Identifier column of B.csv, if it differs.
    #[arg(long)]
    pub id_b: Option<String>,
    /// Value column of B.csv: computes the intersection sum (integers).
    #[arg(long)]
    pub value: Option<String>,
    #[command(flatten)]
    pub session: SessionArgs,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `privet pjc` subcommand.
pub fn run(cmd: PjcCommand) -> Result<()> {
    match cmd {
        PjcCommand::Local(args) => local(&args),
        PjcCommand::Serve {
            config,
            insecure_dev,
        } => serve(&config, insecure_dev),
        PjcCommand::Join(args) => join(&args),
    }
}

fn normalize(case: CaseArg, duplicates: DupArg) -> NormalizeOptions {
    NormalizeOptions {
        case: match case {
            CaseArg::Preserve => CaseRule::Preserve,
            CaseArg::Lower => CaseRule::Lower,
        },
        duplicates: match duplicates {
            DupArg::Refuse => Duplicates::Refuse,
            DupArg::Merge => Duplicates::Merge,
        },
    }
}

impl SessionArgs {
    /// Normalisation options.
    pub fn normalize(&self) -> NormalizeOptions {
        normalize(self.case, self.duplicates)
    }

    /// The server's terms from these options.
    pub fn server_config(&self) -> Result<ServerConfig, PsiError> {
        let bounds = match (self.lower, self.upper) {
            (Some(l), Some(u)) => Some(ValueBounds::new(l, u)?),
            (None, None) => None,
            _ => {
                return Err(PsiError::Config(
                    "give both --lower and --upper, or neither".into(),
                ));
            }
        };
        let dp = self.epsilon.map(|e| match self.delta {
            Some(d) => DpConfig::approximate(e, d),
            None => DpConfig::pure(e),
        });
        let cfg = ServerConfig {
            dp,
            bounds,
            ..ServerConfig::default()
        };
        Ok(cfg)
    }
}

fn read(path: &Path, id: &str, value: Option<&str>, opts: NormalizeOptions) -> Result<InputSet> {
    let mut spec = CsvSpec::new(id);
    spec.value_column = value.map(str::to_owned);
    Ok(InputSet::read_csv(path, &spec, opts)?)
}

fn local(args: &LocalArgs) -> Result<()> {
    let opts = args.session.normalize();
    let mut server_cfg = args.session.server_config()?;
    let functionality = if args.value.is_some() {
        Functionality::Sum
    } else {
        if args.session.lower.is_some() {
            return Err(PsiError::Config("--lower/--upper need --value".into()).into());
        }
        Functionality::Cardinality
    };
    if functionality == Functionality::Cardinality {
        server_cfg.allow_sum = false;
    }
    server_cfg.validate()?;
    let t0 = Instant::now();
    let a = read(&args.a, &args.id, None, opts)?;
    let b = read(
        &args.b,
        args.id_b.as_deref().unwrap_or(&args.id),
        args.value.as_deref(),
        opts,
    )?;
    let read_s = t0.elapsed().as_secs_f64();
    let mut server = PjcServer::new(server_cfg, a)?;
    let mut client = PjcClient::new(ClientConfig::new(functionality), b)?;
    let t1 = Instant::now();
    let run = run_local(&mut server, &mut client, &WireLimits::default(), false)?;
    let protocol_s = t1.elapsed().as_secs_f64();
    let c = &run.client;
    if args.json {
        let v = json!({
            "functionality": match functionality {
                Functionality::Sum => "sum",
                Functionality::Cardinality => "cardinality",
            },
            "server_set_size": c.server_set_size,
            "client_set_size": run.server.client_set_size,
            "intersection_size": c.intersection_size,
            "intersection_sum": c.sum,
            "privacy": privacy_json(c),
            "bytes_client_to_server": run.bytes_client_to_server,
            "bytes_server_to_client": run.bytes_server_to_client,
            "messages": run.messages,
            "seconds_reading": read_s,
            "seconds_protocol": protocol_s,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_outcome(c);
        println!(
            "sets: server {} identifiers, client {}; wire: {} bytes client->server, {} bytes \
             server->client in {} messages; time: {:.3} s reading, {:.3} s protocol",
            c.server_set_size,
            run.server.client_set_size,
            run.bytes_client_to_server,
            run.bytes_server_to_client,
            run.messages,
            read_s,
            protocol_s
        );
    }
    Ok(())
}

fn noise_json(n: &Option<NoiseInfo>) -> Value {
    n.map_or(Value::Null, |n| {
        json!({
            "mechanism": n.mechanism,
            "scale": n.scale,
            "sensitivity": n.sensitivity,
            "ci95_half_width": n.ci95_half_width,
        })
    })
}

/// The privacy part of the JSON output.
pub fn privacy_json(c: &ClientOutput) -> Value {
    match c.dp {
        None => Value::Null,
        Some(dp) => json!({
            "epsilon": dp.epsilon,
            "delta": dp.delta,
            "size_noise": noise_json(&c.size_noise),
            "sum_noise": noise_json(&c.sum_noise),
            "bounds": c.clamped.map(|(b, _)| json!([b.lower(), b.upper()])),
            "values_clamped": c.clamped.map(|(_, n)| n),
        }),
    }
}

/// Prints what the client learned, in words.
pub fn print_outcome(c: &ClientOutput) {
    let ci = |n: &Option<NoiseInfo>| {
        n.map(|n| format!(" (± {} at 95%, {})", n.ci95_half_width, n.mechanism))
            .unwrap_or_default()
    };
    println!(
        "intersection size: {}{}",
        c.intersection_size,
        ci(&c.size_noise)
    );
    if let Some(sum) = c.sum {
        println!("intersection sum: {sum}{}", ci(&c.sum_noise));
    }
    match c.dp {
        Some(dp) => println!(
            "privacy: epsilon {}{} for the size and sum together, per identifier in either set{}",
            dp.epsilon,
            dp.delta
                .map(|d| format!(", delta {d:e}"))
                .unwrap_or_default(),
            c.clamped
                .map(|(b, n)| format!(
                    "; values clamped to [{}, {}] ({n} changed)",
                    b.lower(),
                    b.upper()
                ))
                .unwrap_or_default()
        ),
        None => println!(
            "privacy: exact values (no noise: small overlaps and outliers can reveal members; see --epsilon)"
        ),
    }
}

fn serve(config: &Path, insecure_dev: bool) -> Result<()> {
    crate::net_cmd::init_tracing();
    let config = privet_psi_service::ServeConfig::from_file(config, insecure_dev)?;
    crate::net_cmd::runtime()?.block_on(async move {
        let mut handle = privet_psi_service::serve(config).await?;
        eprintln!("PJC server listening on {}", handle.addr);
        loop {
            tokio::select! {
                done = handle.finished.recv() => match done {
                    Some(Ok(o)) => eprintln!(
                        "session finished: client set {}, intersection {} (exact; released {})",
                        o.client_set_size, o.exact_intersection_size, o.released_intersection_size
                    ),
                    Some(Err(e)) => eprintln!("session failed: {e}"),
                    None => break,
                },
                _ = crate::net_cmd::termination() => break,
            }
        }
        handle.shutdown().await?;
        Ok(())
    })
}

fn join(args: &JoinArgs) -> Result<()> {
    let opts = normalize(args.case, args.duplicates);
    let set = read(&args.csv, &args.id, args.value.as_deref(), opts)?;
    let security = if args.insecure_dev {
        eprintln!("warning: --insecure-dev: plain text, no authentication");
        privet_transport::Security::InsecureDev
    } else {
        privet_transport::Security::Tls(privet_identity::TlsFiles::in_dir(&args.certs, &args.name))
    };
    let functionality = privet_psi_service::functionality_for(&set);
    let t = Instant::now();
    let report = crate::net_cmd::runtime()?.block_on(privet_psi_service::join(
        &args.server,
        &security,
        ClientConfig::new(functionality),
        set,
    ))?;
    let c = &report.output;
    if args.json {
        let v = json!({
            "server_set_size": c.server_set_size,
            "intersection_size": c.intersection_size,
            "intersection_sum": c.sum,
            "privacy": privacy_json(c),
            "bytes_sent": report.bytes_sent,
            "bytes_received": report.bytes_received,
            "socket_bytes": report.socket_bytes,
            "seconds": t.elapsed().as_secs_f64(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_outcome(c);
        println!(
            "server set: {} identifiers; wire: {} bytes sent, {} received ({} on the socket with \
             TLS); {:.3} s",
            c.server_set_size,
            report.bytes_sent,
            report.bytes_received,
            report.socket_bytes,
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
