//! A real federation on 127.0.0.1 for the binary's tests: certificates from `privet certs`,
//! the coordinator and nodes as child processes, and the operator's commands.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use super::{BIN, ok, privet};

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Federation {
    pub dir: TempDir,
    pub port: u16,
}

impl Federation {
    /// Certificates for the coordinator, an admin and `nodes`; a coordinator.toml.
    pub fn new(nodes: &[String]) -> Federation {
        let dir = TempDir::new().unwrap();
        let d = dir.path();
        ok(privet(d, &["certs", "init"]));
        ok(privet(
            d,
            &[
                "certs",
                "issue",
                "coordinator",
                "--host",
                "localhost",
                "--host",
                "127.0.0.1",
            ],
        ));
        ok(privet(
            d,
            &["certs", "issue", "admin", "--role", "operator"],
        ));
        for n in nodes {
            ok(privet(d, &["certs", "issue", n]));
        }
        let port = free_port();
        std::fs::write(
            d.join("coordinator.toml"),
            format!(
                "listen = \"127.0.0.1:{port}\"\nstate = \"coordinator.db\"\n\n[tls]\nca = \
                 \"certs/ca.pem\"\ncert = \"certs/coordinator.pem\"\nkey = \"certs/coordinator.key\"\n"
            ),
        )
        .unwrap();
        Federation { dir, port }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    pub fn spawn(&self, args: &[&str], log: &str) -> Proc {
        let log = std::fs::File::create(self.path().join(log)).unwrap();
        let child = Command::new(BIN)
            .args(args)
            .current_dir(self.path())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Proc(child)
    }

    pub fn coordinator(&self) -> Proc {
        let p = self.spawn(
            &["coordinator", "--config", "coordinator.toml"],
            "coordinator.log",
        );
        self.wait_for(Duration::from_secs(20), "the coordinator to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
        p
    }

    /// A node holding `rows` (CSV text with header) under certificate files `cert_dir/NAME.*`.
    pub fn node_config(&self, name: &str, csv: &str, cert_dir: &str) {
        std::fs::write(self.path().join(format!("{name}.csv")), csv).unwrap();
        std::fs::write(
            self.path().join(format!("{name}.toml")),
            format!(
                "name = \"{name}\"\ncoordinator = \"{}\"\nmax_backoff_secs = 0.5\n\n[tls]\nca = \
                 \"certs/ca.pem\"\ncert = \"{cert_dir}/{name}.pem\"\nkey = \
                 \"{cert_dir}/{name}.key\"\n\n[data]\npath = \"{name}.csv\"\nlabel = \"benign\"\n",
                self.url()
            ),
        )
        .unwrap();
    }

    pub fn node(&self, name: &str) -> Proc {
        let config = format!("{name}.toml");
        self.spawn(&["node", "--config", &config], &format!("{name}.log"))
    }

    pub fn remote_args(&self) -> Vec<String> {
        vec![
            "--coordinator".into(),
            self.url(),
            "--certs".into(),
            "certs".into(),
        ]
    }

    pub fn submit(&self, job: &str) -> String {
        let mut args = vec!["submit".to_string(), job.to_string()];
        args.extend(self.remote_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(privet(self.path(), &args)).trim().to_string()
    }

    pub fn status(&self) -> Value {
        let mut args = vec!["status".to_string(), "--json".to_string()];
        args.extend(self.remote_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = privet(self.path(), &args);
        if !out.status.success() {
            return Value::Null;
        }
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    pub fn job(&self, id: &str) -> Value {
        let status = self.status();
        status["jobs"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["job_id"] == id).cloned())
            .unwrap_or(Value::Null)
    }

    pub fn wait_for(&self, timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            if start.elapsed() > timeout {
                panic!("timed out waiting for {what}\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn wait_job(&self, id: &str, timeout: Duration) -> Value {
        let mut last = Value::Null;
        self.wait_for(timeout, "the job to finish", || {
            last = self.job(id);
            last["state"] == "completed" || last["state"] == "failed"
        });
        assert_eq!(last["state"], "completed", "{last:#}\n{}", self.logs());
        last
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(self.path()).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "log") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                out.push_str(&format!("--- {}\n", p.display()));
                for line in tail.into_iter().rev() {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }

    pub fn read_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).unwrap_or_default()
    }
}

pub fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("hospital-{i}")).collect()
}

pub fn even_split(n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(repo_file("data/breast_cancer.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    (0..n)
        .map(|i| {
            let mut csv = String::from(lines[0]);
            csv.push('\n');
            for line in lines[1..].iter().skip(i).step_by(n) {
                csv.push_str(line);
                csv.push('\n');
            }
            csv
        })
        .collect()
}
