//! The coordinator's durable state: jobs, finished rounds and the latest checkpoint of each job,
//! in one SQLite file (WAL mode, `synchronous = FULL`).
//!
//! Invariant: a round's row and the checkpoint that includes it are written in **one
//! transaction**, and `(job, round)` is the primary key. Killed at any moment, the coordinator
//! restarts from the last committed checkpoint: every round in `rounds` is in the checkpoint's
//! model and none is applied twice; a round in progress at the crash leaves no trace and its
//! number is never reused (`last_round_started` is recorded when a round starts).

use std::path::Path;

use privet_fl::RoundDetails;
use privet_fl::engine::Checkpoint;
use rusqlite::{Connection, OptionalExtension, params};

/// What can go wrong with the coordinator's database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file cannot be opened or created.
    #[error("state database {}: {source}", path.display())]
    Open {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// Another coordinator holds the database.
    #[error(
        "state database {} is in use by another coordinator (pid {pid}); stop it first, or give \
         this one another `state` file",
        path.display()
    )]
    Locked {
        /// The database file.
        path: std::path::PathBuf,
        /// The holder's process id, as it wrote it in the lock file.
        pid: String,
    },
    /// The lock file beside the database cannot be created or locked.
    #[error("lock file {}: {source}", path.display())]
    Lock {
        /// The lock file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A query failed.
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A row does not decode, or the schema is not one this build reads.
    #[error("state database: {0}")]
    Corrupt(String),
    /// The store's thread is gone (the coordinator is shutting down, or a query panicked).
    #[error("state database: the store thread stopped")]
    Stopped,
    /// The store's thread could not be started.
    #[error("state database: cannot start its thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Schema version of the database; a newer file is refused, not guessed at, and an older one is
/// migrated in place (1: no round details; 2: the aggregate transform's state inside the
/// strategy state; 3: no job events; 4: no audit log, agreements or privacy spend).
pub const SCHEMA_VERSION: i64 = 5;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    job_toml TEXT NOT NULL,
    nodes TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    encoder TEXT,
    largest_client INTEGER,
    total_rounds INTEGER NOT NULL,
    completed_rounds INTEGER NOT NULL DEFAULT 0,
    last_round_started INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rounds (
    job_id TEXT NOT NULL REFERENCES jobs(id),
    round INTEGER NOT NULL,
    completed INTEGER NOT NULL,
    participants TEXT NOT NULL,
    dropped TEXT NOT NULL,
    train_loss REAL,
    num_examples INTEGER NOT NULL,
    seconds REAL NOT NULL,
    failure TEXT NOT NULL DEFAULT '',
    details TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (job_id, round)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    job_id TEXT PRIMARY KEY REFERENCES jobs(id),
    round INTEGER NOT NULL,
    completed_rounds INTEGER NOT NULL,
    consecutive_failures INTEGER NOT NULL,
    params BLOB NOT NULL,
    strategy_state TEXT NOT NULL,
    transform_state TEXT
);
CREATE TABLE IF NOT EXISTS job_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES jobs(id),
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS audit_entries (
    idx INTEGER PRIMARY KEY,
    entry TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_heads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    size INTEGER NOT NULL,
    head TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS agreements (
    hash TEXT PRIMARY KEY,
    agreement_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS agreement_spend (
    job_id TEXT PRIMARY KEY REFERENCES jobs(id),
    agreement_id TEXT NOT NULL,
    agreement_hash TEXT NOT NULL,
    epsilon REAL NOT NULL,
    delta REAL NOT NULL
);
";

/// Audit-log rows to append with the state change they record, in one transaction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditRows {
    /// `(index, privet-audit entry JSON)`, contiguous from the log's current size.
    pub entries: Vec<(u64, String)>,
    /// The signed tree head over the log with these entries (head JSON).
    pub head: Option<(u64, String)>,
}

/// Privacy budget a job reserves under an agreement (its declared maximum).
#[derive(Clone, Debug, PartialEq)]
pub struct SpendRow {
    /// The job.
    pub job_id: String,
    /// The agreement's id (budgets count across its versions).
    pub agreement_id: String,
    /// The version's hash.
    pub agreement_hash: String,
    /// Epsilon reserved.
    pub epsilon: f64,
    /// Delta reserved.
    pub delta: f64,
}

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for its nodes or for the feature encoding.
    Waiting,
    /// Rounds are running.
    Running,
    /// All rounds completed.
    Completed,
    /// Failed (too many failed rounds, or bad data).
    Failed,
    /// Stopped before a round that would have exceeded the job's privacy budget; the rounds
    /// before it stand.
    Stopped,
    /// Cancelled by an operator; the rounds before it stand.
    Cancelled,
}

impl JobState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Waiting => "waiting",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Stopped => "stopped",
            JobState::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Result<JobState, StoreError> {
        Ok(match s {
            "waiting" => JobState::Waiting,
            "running" => JobState::Running,
            "completed" => JobState::Completed,
            "failed" => JobState::Failed,
            "stopped" => JobState::Stopped,
            "cancelled" => JobState::Cancelled,
            other => return Err(StoreError::Corrupt(format!("unknown job state {other:?}"))),
        })
    }

    /// Whether the job is over.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Stopped | JobState::Cancelled
        )
    }
}

/// A stored job.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRow {
    /// Id.
    pub id: String,
    /// The job file.
    pub job_toml: String,
    /// Expected node names; node `i` is client `i`.
    pub nodes: Vec<String>,
    /// State.
    pub state: JobState,
    /// Why it failed.
    pub error: String,
    /// The fitted feature encoding (JSON), once known.
    pub encoder: Option<String>,
    /// The most rows any node reported, fixed with the encoding (`None` under `[privacy]`,
    /// whose summaries are noisy, and in jobs stored before schema 4).
    pub largest_client: Option<u64>,
    /// Rounds to complete.
    pub total_rounds: u32,
    /// Rounds completed.
    pub completed_rounds: u32,
}

/// A finished round.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundRow {
    /// Round number.
    pub round: u32,
    /// Whether the global model was updated.
    pub completed: bool,
    /// Nodes whose update is in the aggregate.
    pub participants: Vec<String>,
    /// Selected nodes that dropped, straggled or were refused.
    pub dropped: Vec<String>,
    /// Example-weighted training loss (NaN for failed rounds, and when not revealed).
    pub train_loss: f64,
    /// Training examples aggregated.
    pub num_examples: u64,
    /// Wall time of the round.
    pub seconds: f64,
    /// Why it failed.
    pub failure: String,
    /// What the job's plug-ins report about the round, by name (one JSON column).
    pub details: RoundDetails,
}

/// The coordinator's database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    /// The lock file, held (locked) while the store is open.
    _lock: Option<std::fs::File>,
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("corrupt row: {e}")))
}

impl Store {
    /// Opens (creating if needed) the database at `path`, after taking an exclusive lock on
    /// `PATH.lock` beside it (which holds the locking process's id): two coordinators on one
    /// state file would run the same jobs twice. The lock goes with the store (and with the
    /// process, however it ends).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let lock = lock_beside(path)?;
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::init(conn, Some(lock))
    }

    /// An in-memory database (tests).
    pub fn in_memory() -> Result<Store, StoreError> {
        Self::init(Connection::open_in_memory()?, None)
    }

    fn init(conn: Connection, lock: Option<std::fs::File>) -> Result<Store, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match version {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                    params![SCHEMA_VERSION.to_string()],
                )?;
            }
            Some(v) => {
                let found: i64 = v.parse().map_err(|_| {
                    StoreError::Corrupt(format!("database schema version {v:?} is not a number"))
                })?;
                if !(1..=SCHEMA_VERSION).contains(&found) {
                    return Err(StoreError::Corrupt(format!(
                        "database schema version {v}, this privet reads version {SCHEMA_VERSION}"
                    )));
                }
                // Each step and its version bump commit together.
                let tx = conn.unchecked_transaction()?;
                if found < 2 {
                    // Version 1 had no per-round details.
                    tx.execute_batch(
                        "ALTER TABLE rounds ADD COLUMN details TEXT NOT NULL DEFAULT '{}';",
                    )?;
                }
                if found < 3 {
                    migrate_transform_state(&tx)?;
                }
                if found < 4 {
                    // Version 3 did not keep the largest node's row count (SecAgg+ derives its
                    // max_weight from it); its jobs keep the default.
                    tx.execute_batch("ALTER TABLE jobs ADD COLUMN largest_client INTEGER;")?;
                }
                // Version 4 had no audit tables: `SCHEMA` above created them empty, so its
                // jobs (none ran under an agreement) start an empty log.
                tx.execute(
                    "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
                    params![SCHEMA_VERSION.to_string()],
                )?;
                tx.commit()?;
            }
        }
        Ok(Store { conn, _lock: lock })
    }

    /// Runs `f` as one transaction: everything it writes commits together, or nothing does.
    pub fn atomically<T>(
        &mut self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.conn.execute_batch("SAVEPOINT atomically")?;
        match f(self) {
            Ok(v) => {
                self.conn.execute_batch("RELEASE atomically")?;
                Ok(v)
            }
            Err(e) => {
                self.conn
                    .execute_batch("ROLLBACK TO atomically; RELEASE atomically")?;
                Err(e)
            }
        }
    }

    /// Appends audit entries and their signed head. An index already present is an error and,
    /// inside [`Store::atomically`], undoes the whole change.
    pub fn append_audit(&self, rows: &AuditRows) -> Result<(), StoreError> {
        for (idx, entry) in &rows.entries {
            self.conn.execute(
                "INSERT INTO audit_entries (idx, entry) VALUES (?1, ?2)",
                params![*idx as i64, entry],
            )?;
        }
        if let Some((size, head)) = &rows.head {
            self.conn.execute(
                "INSERT INTO audit_heads (size, head) VALUES (?1, ?2)",
                params![*size as i64, head],
            )?;
        }
        Ok(())
    }

    /// Every audit entry (JSON), by index.
    pub fn audit_entries(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT idx, entry FROM audit_entries ORDER BY idx")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for (i, row) in rows.enumerate() {
            let (idx, entry) = row?;
            if idx != i as i64 {
                return Err(StoreError::Corrupt(format!(
                    "audit log: entry {i} is missing (the next stored is {idx})"
                )));
            }
            out.push(entry);
        }
        Ok(out)
    }

    /// Every signed tree head (JSON), oldest first.
    pub fn audit_heads(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT head FROM audit_heads ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records an agreement version the first time a job uses it; `true` if it was new.
    pub fn record_agreement(
        &self,
        hash: &str,
        id: &str,
        version: u32,
        text: &str,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO agreements (hash, agreement_id, version, text)
             VALUES (?1, ?2, ?3, ?4)",
            params![hash, id, version, text],
        )?;
        Ok(n == 1)
    }

    /// Records a job's reserved privacy budget under an agreement.
    pub fn record_spend(&self, spend: &SpendRow) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO agreement_spend (job_id, agreement_id, agreement_hash, epsilon, delta)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                spend.job_id,
                spend.agreement_id,
                spend.agreement_hash,
                spend.epsilon,
                spend.delta
            ],
        )?;
        Ok(())
    }

    /// The `(epsilon, delta)` reserved under an agreement (all its versions) by its jobs.
    pub fn agreement_spent(&self, agreement_id: &str) -> Result<(f64, f64), StoreError> {
        Ok(self.conn.query_row(
            "SELECT COALESCE(SUM(epsilon), 0.0), COALESCE(SUM(delta), 0.0)
             FROM agreement_spend WHERE agreement_id = ?1",
            params![agreement_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// The agreement a job was admitted under: `(agreement id, hash)`, if any.
    pub fn job_agreement(&self, job_id: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT agreement_id, agreement_hash FROM agreement_spend WHERE job_id = ?1",
                params![job_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Records a new job.
    pub fn insert_job(
        &self,
        id: &str,
        job_toml: &str,
        nodes: &[String],
        total_rounds: u32,
    ) -> Result<(), StoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        self.conn.execute(
            "INSERT INTO jobs (id, job_toml, nodes, state, total_rounds, created_at)
             VALUES (?1, ?2, ?3, 'waiting', ?4, ?5)",
            params![id, job_toml, json(&nodes)?, total_rounds, now],
        )?;
        Ok(())
    }

    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(JobRowRaw, String)> {
        Ok((
            JobRowRaw {
                id: r.get(0)?,
                job_toml: r.get(1)?,
                nodes: r.get(2)?,
                error: r.get(4)?,
                encoder: r.get(5)?,
                total_rounds: r.get(6)?,
                completed_rounds: r.get(7)?,
                largest_client: r.get(8)?,
            },
            r.get(3)?,
        ))
    }

    const JOB_COLUMNS: &'static str = "id, job_toml, nodes, state, error, encoder, total_rounds, completed_rounds, \
         largest_client";

    /// All jobs, oldest first.
    pub fn jobs(&self) -> Result<Vec<JobRow>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM jobs ORDER BY created_at, id",
            Self::JOB_COLUMNS
        ))?;
        let rows = stmt.query_map([], Self::row)?;
        let mut out = Vec::new();
        for row in rows {
            let (raw, state) = row?;
            out.push(raw.finish(&state)?);
        }
        Ok(out)
    }

    /// One job.
    pub fn job(&self, id: &str) -> Result<Option<JobRow>, StoreError> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {} FROM jobs WHERE id = ?1", Self::JOB_COLUMNS),
                params![id],
                Self::row,
            )
            .optional()?;
        row.map(|(raw, state)| raw.finish(&state)).transpose()
    }

    /// Stores the fitted encoding (with the most rows any node reported, when known) and marks
    /// the job running.
    pub fn set_encoder(
        &self,
        id: &str,
        encoder_json: &str,
        largest_client: Option<u64>,
    ) -> Result<(), StoreError> {
        let largest = largest_client.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        self.conn.execute(
            "UPDATE jobs SET encoder = ?2, largest_client = ?3, state = 'running' WHERE id = ?1",
            params![id, encoder_json, largest],
        )?;
        Ok(())
    }

    /// Sets a job's state (and failure reason), unless it has already finished (a cancellation
    /// is not overwritten by a driver that ends after it).
    pub fn set_state(&self, id: &str, state: JobState, error: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE jobs SET state = ?2, error = ?3
             WHERE id = ?1 AND state NOT IN ('completed', 'failed', 'stopped', 'cancelled')",
            params![id, state.as_str(), error],
        )?;
        Ok(())
    }

    /// Records an event in a job's history (who did what, when): cancellations now.
    pub fn record_event(
        &self,
        job: &str,
        actor: &str,
        kind: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        self.conn.execute(
            "INSERT INTO job_events (job_id, at, actor, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![job, now, actor, kind, detail],
        )?;
        Ok(())
    }

    /// A job's events, oldest first: `(unix seconds, actor, kind, detail)`.
    pub fn events(&self, job: &str) -> Result<Vec<(i64, String, String, String)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT at, actor, kind, detail FROM job_events WHERE job_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![job], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Cancels a job that has not finished, recording who and why, atomically; `false` if the
    /// job had already finished (nothing changes).
    pub fn cancel(&mut self, job: &str, actor: &str, reason: &str) -> Result<bool, StoreError> {
        let tx = self.conn.savepoint()?;
        let state: Option<String> = tx
            .query_row("SELECT state FROM jobs WHERE id = ?1", params![job], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(state) = state else {
            return Ok(false);
        };
        if JobState::parse(&state)?.is_final() {
            return Ok(false);
        }
        let why = format!("cancelled by {actor}: {reason}");
        tx.execute(
            "UPDATE jobs SET state = 'cancelled', error = ?2 WHERE id = ?1",
            params![job, why],
        )?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        tx.execute(
            "INSERT INTO job_events (job_id, at, actor, kind, detail) VALUES (?1, ?2, ?3, 'cancel', ?4)",
            params![job, now, actor, reason],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Records that `round` has started, so that after a crash its number is never reused.
    pub fn round_started(&self, id: &str, round: u32) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE jobs SET last_round_started = MAX(last_round_started, ?2) WHERE id = ?1",
            params![id, round],
        )?;
        Ok(())
    }

    /// The highest round number a job has started.
    pub fn last_round_started(&self, id: &str) -> Result<u32, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT last_round_started FROM jobs WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    /// Records a finished round and the checkpoint after it, atomically. A round already
    /// recorded is an error and changes nothing.
    pub fn finish_round(
        &mut self,
        id: &str,
        round: &RoundRow,
        checkpoint: &Checkpoint,
    ) -> Result<(), StoreError> {
        let tx = self.conn.savepoint()?;
        let params_blob: Vec<u8> = checkpoint
            .global
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        tx.execute(
            "INSERT INTO rounds (job_id, round, completed, participants, dropped, train_loss,
                                 num_examples, seconds, failure, details)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                id,
                round.round,
                round.completed,
                json(&round.participants)?,
                json(&round.dropped)?,
                round.train_loss.is_finite().then_some(round.train_loss),
                round.num_examples as i64,
                round.seconds,
                round.failure,
                round.details.to_json().to_string(),
            ],
        )?;
        tx.execute(
            "INSERT INTO checkpoints (job_id, round, completed_rounds, consecutive_failures,
                                      params, strategy_state, transform_state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(job_id) DO UPDATE SET round = ?2, completed_rounds = ?3,
                 consecutive_failures = ?4, params = ?5, strategy_state = ?6,
                 transform_state = ?7",
            params![
                id,
                checkpoint.round,
                checkpoint.completed_rounds,
                checkpoint.consecutive_failures,
                params_blob,
                json(&checkpoint.strategy_state)?,
                checkpoint.transform_state,
            ],
        )?;
        tx.execute(
            "UPDATE jobs SET completed_rounds = ?2 WHERE id = ?1",
            params![id, checkpoint.completed_rounds],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The latest checkpoint of a job.
    pub fn checkpoint(&self, id: &str) -> Result<Option<Checkpoint>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT round, completed_rounds, consecutive_failures, params, strategy_state,
                        transform_state
                 FROM checkpoints WHERE job_id = ?1",
                params![id],
                |r| {
                    Ok((
                        r.get::<_, u32>(0)?,
                        r.get::<_, u32>(1)?,
                        r.get::<_, u32>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, Option<String>>(5)?,
                    ))
                },
            )
            .optional()?;
        let Some((round, completed_rounds, consecutive_failures, blob, state, transform_state)) =
            row
        else {
            return Ok(None);
        };
        let global = privet_transport::bytes_to_f32(&blob)
            .map_err(|e| StoreError::Corrupt(format!("corrupt checkpoint: {e}")))?;
        Ok(Some(Checkpoint {
            round,
            completed_rounds,
            consecutive_failures,
            global,
            strategy_state: from_json(&state)?,
            transform_state,
        }))
    }

    /// A job's finished rounds, in order.
    pub fn rounds(&self, id: &str) -> Result<Vec<RoundRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT round, completed, participants, dropped, train_loss, num_examples, seconds,
                    failure, details
             FROM rounds WHERE job_id = ?1 ORDER BY round",
        )?;
        let rows = stmt.query_map(params![id], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<f64>>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, f64>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (
                round,
                completed,
                participants,
                dropped,
                loss,
                examples,
                seconds,
                failure,
                details,
            ) = row?;
            out.push(RoundRow {
                round,
                completed,
                participants: from_json(&participants)?,
                dropped: from_json(&dropped)?,
                train_loss: loss.unwrap_or(f64::NAN),
                num_examples: examples.max(0) as u64,
                seconds,
                failure,
                details: RoundDetails::from_json(from_json(&details)?)
                    .map_err(|e| StoreError::Corrupt(format!("corrupt row: {e}")))?,
            });
        }
        Ok(out)
    }
}

/// A query for the store's thread.
type Task = Box<dyn FnOnce(&mut Store) + Send>;

enum Command {
    Run(Task),
    Close(tokio::sync::oneshot::Sender<()>),
}

/// The store as an actor: SQLite runs on its own thread, never on the async workers; every
/// query is a closure sent to that thread and answered through a one-shot channel, in the order
/// sent. Cheap to clone.
#[derive(Clone)]
pub struct StoreActor {
    tx: std::sync::mpsc::Sender<Command>,
}

impl std::fmt::Debug for StoreActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreActor").finish_non_exhaustive()
    }
}

impl StoreActor {
    /// Moves `store` to a thread of its own.
    pub fn spawn(store: Store) -> Result<StoreActor, StoreError> {
        let (tx, rx) = std::sync::mpsc::channel::<Command>();
        std::thread::Builder::new()
            .name("privet-store".into())
            .spawn(move || {
                let mut store = Some(store);
                while let Ok(command) = rx.recv() {
                    match command {
                        Command::Run(task) => match &mut store {
                            Some(s) => task(s),
                            // Closed: the task's reply channel drops, its caller sees Stopped.
                            None => drop(task),
                        },
                        Command::Close(done) => {
                            // Dropping the store closes SQLite and releases the file lock.
                            store = None;
                            let _ = done.send(());
                        }
                    }
                }
            })
            .map_err(StoreError::Thread)?;
        Ok(StoreActor { tx })
    }

    /// Runs `f` on the store's thread and returns its answer.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let task: Task = Box::new(move |store| {
            let _ = reply.send(f(store));
        });
        self.tx
            .send(Command::Run(task))
            .map_err(|_| StoreError::Stopped)?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }

    /// Closes the database after the queries already sent (later ones fail with
    /// [`StoreError::Stopped`]) and waits until it is closed and its lock released.
    pub async fn close(&self) {
        let (done, closed) = tokio::sync::oneshot::channel();
        if self.tx.send(Command::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }
}

/// Locks `PATH.lock` exclusively (without blocking) and writes this process's id into it.
fn lock_beside(path: &Path) -> Result<std::fs::File, StoreError> {
    use std::io::{Read, Seek, Write};
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = std::path::PathBuf::from(lock_path);
    let io = |source| StoreError::Lock {
        path: lock_path.clone(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.take(32).read_to_string(&mut holder);
            let pid = holder.trim();
            return Err(StoreError::Locked {
                path: path.to_path_buf(),
                pid: if pid.is_empty() {
                    "unknown".into()
                } else {
                    pid.chars().filter(char::is_ascii_digit).take(12).collect()
                },
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(file)
}

/// Schema 2 kept the aggregate transform's state (DP-FedAvg's ledger) inside the strategy
/// state, as an entry of this name holding its UTF-8 text one byte per number; schema 3 gives
/// it a column of its own.
const LEGACY_TRANSFORM_ENTRY: &str = "privet/aggregate-transform/v1";

fn migrate_transform_state(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch("ALTER TABLE checkpoints ADD COLUMN transform_state TEXT;")?;
    let rows: Vec<(String, String)> = {
        let mut stmt = tx.prepare("SELECT job_id, strategy_state FROM checkpoints")?;
        let mapped = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        mapped.collect::<Result<_, _>>()?
    };
    for (job, state) in rows {
        let mut entries: Vec<(String, Vec<f64>)> = from_json(&state)?;
        let Some(at) = entries
            .iter()
            .position(|(name, _)| name == LEGACY_TRANSFORM_ENTRY)
        else {
            continue;
        };
        let (_, values) = entries.remove(at);
        let bytes = values
            .iter()
            .map(|&v| {
                if v.fract() == 0.0 && (0.0..=255.0).contains(&v) {
                    Ok(v as u8)
                } else {
                    Err(StoreError::Corrupt(format!(
                        "job {job}: the legacy transform state holds {v}, not a byte"
                    )))
                }
            })
            .collect::<Result<Vec<u8>, _>>()?;
        let text = String::from_utf8(bytes).map_err(|_| {
            StoreError::Corrupt(format!(
                "job {job}: the legacy transform state is not UTF-8"
            ))
        })?;
        tx.execute(
            "UPDATE checkpoints SET strategy_state = ?2, transform_state = ?3 WHERE job_id = ?1",
            params![job, json(&entries)?, text],
        )?;
    }
    Ok(())
}

struct JobRowRaw {
    id: String,
    job_toml: String,
    nodes: String,
    error: String,
    encoder: Option<String>,
    total_rounds: u32,
    completed_rounds: u32,
    largest_client: Option<i64>,
}

impl JobRowRaw {
    fn finish(self, state: &str) -> Result<JobRow, StoreError> {
        Ok(JobRow {
            id: self.id,
            job_toml: self.job_toml,
            nodes: from_json(&self.nodes)?,
            state: JobState::parse(state)?,
            error: self.error,
            encoder: self.encoder,
            largest_client: self.largest_client.and_then(|n| u64::try_from(n).ok()),
            total_rounds: self.total_rounds,
            completed_rounds: self.completed_rounds,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn round(n: u32) -> RoundRow {
        RoundRow {
            round: n,
            completed: true,
            participants: vec!["a".into()],
            dropped: vec![],
            train_loss: 0.5,
            num_examples: 10,
            seconds: 0.1,
            failure: String::new(),
            details: RoundDetails::from_json(serde_json::json!({
                "secure_aggregation": {"n": 4, "k": 3, "t": 3},
                "privacy": {
                    "mode": "central",
                    "epsilon": 0.5,
                    "cumulative_epsilon": 0.5 * f64::from(n),
                    "delta": 1e-5,
                    "noise_multiplier": 1.1,
                    "clip": 0.1,
                },
            }))
            .unwrap(),
        }
    }

    fn checkpoint(n: u32) -> Checkpoint {
        Checkpoint {
            round: n,
            completed_rounds: n,
            consecutive_failures: 0,
            global: vec![n as f32; 3],
            strategy_state: vec![("m".into(), vec![1.0, 2.0])],
            transform_state: Some(format!("{{\"ledger\":{n}}}")),
        }
    }

    #[test]
    fn a_round_is_recorded_once_with_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut store = Store::open(&path).unwrap();
        store.insert_job("j1", "toml", &["a".into()], 5).unwrap();
        store.finish_round("j1", &round(1), &checkpoint(1)).unwrap();
        // A second record of round 1 fails and leaves the checkpoint alone.
        assert!(store.finish_round("j1", &round(1), &checkpoint(9)).is_err());
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.checkpoint("j1").unwrap().unwrap(), checkpoint(1));
        assert_eq!(store.rounds("j1").unwrap(), vec![round(1)]);
        assert_eq!(store.job("j1").unwrap().unwrap().completed_rounds, 1);
        assert!(store.job("nope").unwrap().is_none());
    }

    #[test]
    fn a_second_store_on_the_same_file_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let first = Store::open(&path).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(matches!(err, StoreError::Locked { .. }));
        drop(first);
        // The lock goes with the store.
        Store::open(&path).unwrap();
    }

    #[test]
    fn a_cancellation_is_recorded_once_and_finishes_the_job() {
        let mut store = Store::in_memory().unwrap();
        store.insert_job("j1", "toml", &["a".into()], 5).unwrap();
        assert!(store.cancel("j1", "admin", "wrong data").unwrap());
        let job = store.job("j1").unwrap().unwrap();
        assert_eq!(job.state, JobState::Cancelled);
        assert!(job.error.contains("admin"), "{}", job.error);
        let events = store.events("j1").unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].1.as_str(), events[0].2.as_str()),
            ("admin", "cancel")
        );
        // A finished job cannot be cancelled again, and an unknown one not at all.
        assert!(!store.cancel("j1", "admin", "again").unwrap());
        assert!(!store.cancel("nope", "admin", "x").unwrap());
        assert_eq!(store.events("j1").unwrap().len(), 1);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
        drop(conn);
        let err = Store::open(&path).unwrap_err();
        assert!(err.to_string().contains("99"), "{err}");
    }

    #[test]
    fn a_version_1_database_is_migrated_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = Connection::open(&path).unwrap();
            let v1 = SCHEMA
                .replace("    largest_client INTEGER,\n", "")
                .replace("    details TEXT NOT NULL DEFAULT '{}',\n", "")
                .replace(",\n    transform_state TEXT\n", "\n")
                .split("CREATE TABLE IF NOT EXISTS job_events")
                .next()
                .unwrap()
                .to_string();
            assert_ne!(v1, SCHEMA);
            conn.execute_batch(&v1).unwrap();
            conn.execute_batch(
                "INSERT INTO meta (key, value) VALUES ('schema_version', '1');
                 INSERT INTO jobs (id, job_toml, nodes, state, total_rounds, created_at)
                     VALUES ('j1', 'toml', '[\"a\"]', 'running', 5, 0);
                 INSERT INTO rounds (job_id, round, completed, participants, dropped,
                                     train_loss, num_examples, seconds)
                     VALUES ('j1', 1, 1, '[\"a\"]', '[]', 0.5, 10, 0.1);",
            )
            .unwrap();
        }
        let mut store = Store::open(&path).unwrap();
        let old = &store.rounds("j1").unwrap()[0];
        assert_eq!(old.details, RoundDetails::default());
        assert_eq!(old.participants, vec!["a".to_string()]);
        store.finish_round("j1", &round(2), &checkpoint(2)).unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.rounds("j1").unwrap()[1], round(2));
    }

    /// A version 2 database (what privet wrote before the engine's extension channels) keeps
    /// its jobs, rounds and privacy ledger: the ledger moves out of the strategy state into its
    /// own column, in place.
    #[test]
    fn a_version_2_database_is_migrated_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let ledger = r#"{"version":1,"clip":0.5,"rounds":2,"events":[]}"#;
        let encoded: Vec<f64> = ledger.bytes().map(f64::from).collect();
        let strategy_state = serde_json::to_string(&vec![
            ("m".to_string(), vec![1.0, 2.0]),
            (LEGACY_TRANSFORM_ENTRY.to_string(), encoded),
        ])
        .unwrap();
        {
            let conn = Connection::open(&path).unwrap();
            let v2 = SCHEMA
                .replace("    largest_client INTEGER,\n", "")
                .replace(",\n    transform_state TEXT\n", "\n")
                .split("CREATE TABLE IF NOT EXISTS job_events")
                .next()
                .unwrap()
                .to_string();
            assert_ne!(v2, SCHEMA);
            conn.execute_batch(&v2).unwrap();
            conn.execute_batch(
                "INSERT INTO meta (key, value) VALUES ('schema_version', '2');
                 INSERT INTO jobs (id, job_toml, nodes, state, total_rounds, created_at)
                     VALUES ('j1', 'toml', '[\"a\"]', 'running', 5, 0);
                 INSERT INTO rounds (job_id, round, completed, participants, dropped,
                                     train_loss, num_examples, seconds, details)
                     VALUES ('j1', 1, 1, '[\"a\"]', '[]', 0.5, 10, 0.1,
                             '{\"secure_aggregation\":{\"n\":4,\"k\":3,\"t\":3}}');",
            )
            .unwrap();
            conn.execute(
                "INSERT INTO checkpoints (job_id, round, completed_rounds, consecutive_failures,
                                          params, strategy_state)
                 VALUES ('j1', 1, 1, 0, ?1, ?2)",
                params![vec![0u8; 12], strategy_state],
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let cp = store.checkpoint("j1").unwrap().unwrap();
        assert_eq!(cp.strategy_state, vec![("m".to_string(), vec![1.0, 2.0])]);
        assert_eq!(cp.transform_state.as_deref(), Some(ledger));
        let old = &store.rounds("j1").unwrap()[0];
        assert_eq!(
            old.details.get("secure_aggregation"),
            Some(&serde_json::json!({"n": 4, "k": 3, "t": 3}))
        );
        drop(store);
        // Opening again is a no-op: the migration ran once.
        let store = Store::open(&path).unwrap();
        assert_eq!(store.checkpoint("j1").unwrap().unwrap(), cp);
    }
    /// A version 3 database (before cancellations and the largest node's row count) opens as
    /// version 4: its jobs keep their encoding, with no row count (SecAgg+ then keeps its
    /// default weight bound), and new encodings store theirs.
    #[test]
    fn a_version_3_database_is_migrated_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = Connection::open(&path).unwrap();
            let v3 = SCHEMA
                .replace("    largest_client INTEGER,\n", "")
                .split("CREATE TABLE IF NOT EXISTS job_events")
                .next()
                .unwrap()
                .to_string();
            assert_ne!(v3, SCHEMA);
            conn.execute_batch(&v3).unwrap();
            conn.execute_batch(
                "INSERT INTO meta (key, value) VALUES ('schema_version', '3');
                 INSERT INTO jobs (id, job_toml, nodes, state, encoder, total_rounds, created_at)
                     VALUES ('j1', 'toml', '[\"a\"]', 'running', '{}', 5, 0);",
            )
            .unwrap();
        }
        let mut store = Store::open(&path).unwrap();
        let job = store.job("j1").unwrap().unwrap();
        assert_eq!(job.encoder.as_deref(), Some("{}"));
        assert_eq!(job.largest_client, None);
        store.set_encoder("j1", "{}", Some(569)).unwrap();
        assert_eq!(store.job("j1").unwrap().unwrap().largest_client, Some(569));
        assert!(store.cancel("j1", "admin", "test").unwrap());
        assert_eq!(store.events("j1").unwrap().len(), 1);
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.job("j1").unwrap().unwrap().largest_client, Some(569));
    }

    #[test]
    fn a_version_4_database_is_migrated_in_place_with_an_empty_audit_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = Connection::open(&path).unwrap();
            let v4 = SCHEMA
                .split("CREATE TABLE IF NOT EXISTS audit_entries")
                .next()
                .unwrap()
                .to_string();
            assert_ne!(v4, SCHEMA);
            conn.execute_batch(&v4).unwrap();
            conn.execute_batch(
                "INSERT INTO meta (key, value) VALUES ('schema_version', '4');
                 INSERT INTO jobs (id, job_toml, nodes, state, total_rounds, created_at)
                     VALUES ('j1', 'toml', '[\"a\"]', 'running', 5, 0);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert!(store.audit_entries().unwrap().is_empty());
        assert_eq!(store.agreement_spent("study").unwrap(), (0.0, 0.0));
        let version: String = store
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION.to_string());
        assert_eq!(store.job("j1").unwrap().unwrap().total_rounds, 5);
    }

    #[test]
    fn an_audit_batch_commits_with_its_state_change_or_not_at_all() {
        let mut store = Store::in_memory().unwrap();
        let rows = |from: u64| AuditRows {
            entries: vec![
                (from, format!("e{from}")),
                (from + 1, format!("e{}", from + 1)),
            ],
            head: Some((from + 2, "head".into())),
        };
        store
            .atomically(|s| {
                s.insert_job("j1", "toml", &["a".into()], 3)?;
                s.record_spend(&SpendRow {
                    job_id: "j1".into(),
                    agreement_id: "study".into(),
                    agreement_hash: "h1".into(),
                    epsilon: 1.5,
                    delta: 1e-6,
                })?;
                s.append_audit(&rows(0))
            })
            .unwrap();
        // A clash on an index undoes the job insert of the same batch.
        let clash = store.atomically(|s| {
            s.insert_job("j2", "toml", &["a".into()], 3)?;
            s.append_audit(&rows(1))
        });
        assert!(clash.is_err());
        assert!(store.job("j2").unwrap().is_none());
        assert_eq!(store.audit_entries().unwrap(), vec!["e0", "e1"]);
        assert_eq!(store.audit_heads().unwrap(), vec!["head"]);
        assert_eq!(store.agreement_spent("study").unwrap(), (1.5, 1e-6));
        assert_eq!(
            store.job_agreement("j1").unwrap(),
            Some(("study".into(), "h1".into()))
        );
        // A savepoint inside (finish_round, cancel) nests in the outer transaction.
        store
            .atomically(|s| {
                assert!(s.cancel("j1", "admin", "test")?);
                s.append_audit(&rows(2))
            })
            .unwrap();
        assert_eq!(store.audit_entries().unwrap().len(), 4);
        assert!(store.record_agreement("h1", "study", 1, "text").unwrap());
        assert!(!store.record_agreement("h1", "study", 1, "text").unwrap());
    }
}
