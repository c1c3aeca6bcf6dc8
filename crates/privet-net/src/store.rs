//! The coordinator's durable state: jobs, finished rounds and the latest checkpoint of each job,
//! in one SQLite file (WAL mode, `synchronous = FULL`).
//!
//! Invariant: a round's row and the checkpoint that includes it are written in **one
//! transaction**, and `(job, round)` is the primary key. Killed at any moment, the coordinator
//! restarts from the last committed checkpoint: every round in `rounds` is in the checkpoint's
//! model and none is applied twice; a round in progress at the crash leaves no trace and its
//! number is never reused (`last_round_started` is recorded when a round starts).

use std::path::Path;

use privet_fl::engine::Checkpoint;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::NetError;

/// Schema version of the database; a newer file is refused, not guessed at.
pub const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    job_toml TEXT NOT NULL,
    nodes TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    encoder TEXT,
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
    strategy_state TEXT NOT NULL
);
";

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
        }
    }

    fn parse(s: &str) -> Result<JobState, NetError> {
        Ok(match s {
            "waiting" => JobState::Waiting,
            "running" => JobState::Running,
            "completed" => JobState::Completed,
            "failed" => JobState::Failed,
            "stopped" => JobState::Stopped,
            other => return Err(NetError::Store(format!("unknown job state {other:?}"))),
        })
    }

    /// Whether the job is over.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Stopped
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
    /// Example-weighted training loss (NaN for failed rounds).
    pub train_loss: f64,
    /// Training examples aggregated.
    pub num_examples: u64,
    /// Wall time of the round.
    pub seconds: f64,
    /// Why it failed.
    pub failure: String,
    /// What else the round report says (secure aggregation).
    pub details: RoundDetails,
}

/// Per-round facts beyond the basics, stored as JSON so that later additions need no new
/// columns.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RoundDetails {
    /// Secure aggregation's parameters, if the job used it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_aggregation: Option<SecAggRound>,
    /// What the round spent under differential privacy, if the job uses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<RoundPrivacy>,
}

/// One round's privacy accounting (see `privet_sim::privacy::RoundPrivacy`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RoundPrivacy {
    /// "central" or "distributed".
    pub mode: String,
    /// Epsilon of this round alone.
    pub epsilon: f64,
    /// Epsilon of all rounds so far.
    pub cumulative_epsilon: f64,
    /// The reporting delta.
    pub delta: f64,
    /// Noise standard deviation over the sensitivity.
    pub noise_multiplier: f64,
    /// The round's clipping bound.
    pub clip: f64,
}

/// One round of secure aggregation: its participants and graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecAggRound {
    /// Clients that advertised keys.
    pub n: u32,
    /// Neighbours per client in the masking graph (`n - 1`: complete).
    pub k: u32,
    /// Shares needed to reconstruct a secret.
    pub t: u32,
}

/// The coordinator's database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, NetError> {
    serde_json::to_string(value).map_err(|e| NetError::Store(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, NetError> {
    serde_json::from_str(text).map_err(|e| NetError::Store(format!("corrupt row: {e}")))
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, NetError> {
        let conn = Connection::open(path)
            .map_err(|e| NetError::Store(format!("{}: {e}", path.display())))?;
        Self::init(conn)
    }

    /// An in-memory database (tests).
    pub fn in_memory() -> Result<Store, NetError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Store, NetError> {
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
            Some(v) if v == SCHEMA_VERSION.to_string() => {}
            // Version 1 had no per-round details (secure aggregation parameters).
            Some(v) if v == "1" => {
                let tx = conn.unchecked_transaction()?;
                tx.execute_batch(
                    "ALTER TABLE rounds ADD COLUMN details TEXT NOT NULL DEFAULT '{}';
                     UPDATE meta SET value = '2' WHERE key = 'schema_version';",
                )?;
                tx.commit()?;
            }
            Some(v) => {
                return Err(NetError::Store(format!(
                    "database schema version {v}, this privet reads version {SCHEMA_VERSION}"
                )));
            }
        }
        Ok(Store { conn })
    }

    /// Records a new job.
    pub fn insert_job(
        &self,
        id: &str,
        job_toml: &str,
        nodes: &[String],
        total_rounds: u32,
    ) -> Result<(), NetError> {
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
            },
            r.get(3)?,
        ))
    }

    const JOB_COLUMNS: &'static str =
        "id, job_toml, nodes, state, error, encoder, total_rounds, completed_rounds";

    /// All jobs, oldest first.
    pub fn jobs(&self) -> Result<Vec<JobRow>, NetError> {
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
    pub fn job(&self, id: &str) -> Result<Option<JobRow>, NetError> {
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

    /// Stores the fitted encoding and marks the job running.
    pub fn set_encoder(&self, id: &str, encoder_json: &str) -> Result<(), NetError> {
        self.conn.execute(
            "UPDATE jobs SET encoder = ?2, state = 'running' WHERE id = ?1",
            params![id, encoder_json],
        )?;
        Ok(())
    }

    /// Sets a job's state (and failure reason).
    pub fn set_state(&self, id: &str, state: JobState, error: &str) -> Result<(), NetError> {
        self.conn.execute(
            "UPDATE jobs SET state = ?2, error = ?3 WHERE id = ?1",
            params![id, state.as_str(), error],
        )?;
        Ok(())
    }

    /// Records that `round` has started, so that after a crash its number is never reused.
    pub fn round_started(&self, id: &str, round: u32) -> Result<(), NetError> {
        self.conn.execute(
            "UPDATE jobs SET last_round_started = MAX(last_round_started, ?2) WHERE id = ?1",
            params![id, round],
        )?;
        Ok(())
    }

    /// The highest round number a job has started.
    pub fn last_round_started(&self, id: &str) -> Result<u32, NetError> {
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
    ) -> Result<(), NetError> {
        let tx = self.conn.transaction()?;
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
                json(&round.details)?,
            ],
        )?;
        tx.execute(
            "INSERT INTO checkpoints (job_id, round, completed_rounds, consecutive_failures,
                                      params, strategy_state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(job_id) DO UPDATE SET round = ?2, completed_rounds = ?3,
                 consecutive_failures = ?4, params = ?5, strategy_state = ?6",
            params![
                id,
                checkpoint.round,
                checkpoint.completed_rounds,
                checkpoint.consecutive_failures,
                params_blob,
                json(&checkpoint.strategy_state)?,
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
    pub fn checkpoint(&self, id: &str) -> Result<Option<Checkpoint>, NetError> {
        let row = self
            .conn
            .query_row(
                "SELECT round, completed_rounds, consecutive_failures, params, strategy_state
                 FROM checkpoints WHERE job_id = ?1",
                params![id],
                |r| {
                    Ok((
                        r.get::<_, u32>(0)?,
                        r.get::<_, u32>(1)?,
                        r.get::<_, u32>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((round, completed_rounds, consecutive_failures, blob, state)) = row else {
            return Ok(None);
        };
        let global = privet_transport::bytes_to_f32(&blob)
            .map_err(|e| NetError::Store(format!("corrupt checkpoint: {e}")))?;
        Ok(Some(Checkpoint {
            round,
            completed_rounds,
            consecutive_failures,
            global,
            strategy_state: from_json(&state)?,
        }))
    }

    /// A job's finished rounds, in order.
    pub fn rounds(&self, id: &str) -> Result<Vec<RoundRow>, NetError> {
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
                details: from_json(&details)?,
            });
        }
        Ok(out)
    }
}

struct JobRowRaw {
    id: String,
    job_toml: String,
    nodes: String,
    error: String,
    encoder: Option<String>,
    total_rounds: u32,
    completed_rounds: u32,
}

impl JobRowRaw {
    fn finish(self, state: &str) -> Result<JobRow, NetError> {
        Ok(JobRow {
            id: self.id,
            job_toml: self.job_toml,
            nodes: from_json(&self.nodes)?,
            state: JobState::parse(state)?,
            error: self.error,
            encoder: self.encoder,
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
            details: RoundDetails {
                secure_aggregation: Some(SecAggRound { n: 4, k: 3, t: 3 }),
                privacy: Some(RoundPrivacy {
                    mode: "central".into(),
                    epsilon: 0.5,
                    cumulative_epsilon: 0.5 * f64::from(n),
                    delta: 1e-5,
                    noise_multiplier: 1.1,
                    clip: 0.1,
                }),
            },
        }
    }

    fn checkpoint(n: u32) -> Checkpoint {
        Checkpoint {
            round: n,
            completed_rounds: n,
            consecutive_failures: 0,
            global: vec![n as f32; 3],
            strategy_state: vec![("m".into(), vec![1.0, 2.0])],
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
            let v1 = SCHEMA.replace("    details TEXT NOT NULL DEFAULT '{}',\n", "");
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
}
