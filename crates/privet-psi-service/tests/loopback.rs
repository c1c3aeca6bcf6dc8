//! A real server and a real client over a loopback socket with real certificates.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::Path;

use privet_identity::{Name, Role, TlsFiles};
use privet_psi::{ClientConfig, CsvSpec, Functionality, InputSet, NormalizeOptions};
use privet_psi_service::{ServeConfig, ServiceError, join, serve};
use privet_transport::Security;

struct Fed {
    dir: tempfile::TempDir,
}

impl Fed {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        privet_identity::init_ca(&certs, "test", 30, false).unwrap();
        let issue = |name: &str, role: Role, hosts: &[String]| {
            let name: Name = name.parse().unwrap();
            privet_identity::issue(&certs, &name, role, hosts, 30, false).unwrap();
        };
        issue(
            "bank",
            Role::Coordinator,
            &["127.0.0.1".into(), "localhost".into()],
        );
        issue("shop", Role::Node, &[]);
        issue("auditor", Role::Operator, &[]);
        let bank: String = (0..300).map(|i| format!("c{i}@x.org\n")).collect();
        std::fs::write(dir.path().join("bank.csv"), format!("email\n{bank}")).unwrap();
        let shop: String = (200..500)
            .map(|i| format!("c{i}@x.org,{}\n", i % 7))
            .collect();
        std::fs::write(dir.path().join("shop.csv"), format!("email,spend\n{shop}")).unwrap();
        Fed { dir }
    }

    fn files(&self, name: &str) -> TlsFiles {
        TlsFiles::in_dir(&self.dir.path().join("certs"), &name.parse().unwrap())
    }

    fn config(&self, extra: &str) -> std::path::PathBuf {
        let path = self.dir.path().join("pjc.toml");
        std::fs::write(
            &path,
            format!(
                "listen = \"127.0.0.1:0\"\n{extra}\n[data]\ncsv = \"bank.csv\"\nid = \"email\"\n\
                 [tls]\nca = \"certs/ca.pem\"\ncert = \"certs/bank.pem\"\nkey = \"certs/bank.key\"\n"
            ),
        )
        .unwrap();
        path
    }

    fn shop(&self, values: bool) -> InputSet {
        let mut spec = CsvSpec::new("email");
        if values {
            spec = spec.with_values("spend");
        }
        InputSet::read_csv(
            &self.dir.path().join("shop.csv"),
            &spec,
            NormalizeOptions::default(),
        )
        .unwrap()
    }
}

fn expected_sum() -> i64 {
    (200..300).map(|i| i % 7).sum()
}

async fn run_join(
    addr: std::net::SocketAddr,
    fed: &Fed,
    who: &str,
    f: Functionality,
) -> Result<privet_psi_service::JoinReport, ServiceError> {
    let url = format!("https://127.0.0.1:{}", addr.port());
    join(
        &url,
        &Security::Tls(fed.files(who)),
        ClientConfig::new(f),
        fed.shop(f == Functionality::Sum),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_and_sum_over_mutual_tls() {
    let fed = Fed::new();
    let cfg = ServeConfig::from_file(&fed.config(""), false).unwrap();
    let mut server = serve(cfg).await.unwrap();
    let report = run_join(server.addr, &fed, "shop", Functionality::Sum)
        .await
        .unwrap();
    assert_eq!(report.output.intersection_size, 100);
    assert_eq!(report.output.sum, Some(expected_sum()));
    assert_eq!(report.output.server_set_size, 300);
    assert!(report.socket_bytes > report.bytes_sent + report.bytes_received);
    let seen = server.finished.recv().await.unwrap().unwrap();
    assert_eq!(seen.exact_intersection_size, 100);
    assert_eq!(seen.client_set_size, 300);

    let report = run_join(server.addr, &fed, "shop", Functionality::Cardinality)
        .await
        .unwrap();
    assert_eq!(report.output.intersection_size, 100);
    assert_eq!(report.output.sum, None);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noisy_outcomes_over_the_network() {
    let fed = Fed::new();
    let cfg = ServeConfig::from_file(
        &fed.config("[privacy]\nepsilon = 1.0\nlower = 0\nupper = 6\n"),
        false,
    )
    .unwrap();
    let server = serve(cfg).await.unwrap();
    let report = run_join(server.addr, &fed, "shop", Functionality::Sum)
        .await
        .unwrap();
    let size_ci = report.output.size_noise.unwrap().ci95_half_width as i64;
    assert!((report.output.intersection_size - 100).abs() <= 4 * size_ci);
    assert_eq!(report.output.dp.unwrap().epsilon, 1.0);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_roles_and_foreign_certificates_are_refused() {
    let fed = Fed::new();
    let server = serve(ServeConfig::from_file(&fed.config(""), false).unwrap())
        .await
        .unwrap();
    // An operator certificate is not a data owner's.
    let err = run_join(server.addr, &fed, "auditor", Functionality::Sum)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("node"), "{err}");
    // A certificate from another federation's CA fails the handshake.
    let other = Fed::new();
    let err = run_join(server.addr, &other, "shop", Functionality::Sum)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ServiceError::Transport(_) | ServiceError::Remote(_)),
        "{err:?}"
    );
    server.shutdown().await.unwrap();

    // A server whose certificate is a node's refuses to start.
    let path = fed.config("");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("bank.", "shop.");
    std::fs::write(&path, text).unwrap();
    let err = serve(ServeConfig::from_file(&path, false).unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("coordinator certificate"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_terms_reach_the_client_as_an_abort() {
    let fed = Fed::new();
    let server =
        serve(ServeConfig::from_file(&fed.config("[policy]\nallow_sum = false\n"), false).unwrap())
            .await
            .unwrap();
    let err = run_join(server.addr, &fed, "shop", Functionality::Sum)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("aborted"), "{err}");
    server.shutdown().await.unwrap();
}

#[test]
fn bad_configs_are_refused_by_name() {
    let fed = Fed::new();
    let check = |extra: &str, want: &str| {
        let err = ServeConfig::from_file(&fed.config(extra), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{err}");
    };
    check("colour = 1", "colour");
    check("[privacy]\nepsilon = 1.0\n", "bounds");
    check(
        "[privacy]\nepsilon = 1.0\nlower = 0\n",
        "both lower and upper",
    );
    check("[policy]\nmax_sessions = 0\n", "max_sessions");
    let no_tls = fed.dir.path().join("bare.toml");
    std::fs::write(
        &no_tls,
        "listen = \"127.0.0.1:0\"\n[data]\ncsv = \"x\"\nid = \"e\"\n",
    )
    .unwrap();
    let err = ServeConfig::from_file(&no_tls, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[tls]"), "{err}");
    let _ = Path::new("");
}
