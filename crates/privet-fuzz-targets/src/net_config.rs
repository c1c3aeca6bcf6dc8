//! `coordinator.toml` and `node.toml` (privet-coordinator and privet-node config): the first byte picks the file kind;
//! the rest is written to a temporary file and read back through the public loaders.

use std::path::PathBuf;
use std::sync::OnceLock;

use privet_coordinator::CoordinatorConfig;
use privet_node::NodeConfig;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = crate::scratch_dir("net_config");
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    })
}

/// One fuzz input (see the module docs).
pub fn run(data: &[u8]) {
    let Some((&kind, text)) = data.split_first() else {
        return;
    };
    let path = dir().join("config.toml");
    if std::fs::write(&path, text).is_err() {
        return;
    }
    let insecure_dev = kind & 2 != 0;
    if kind & 1 == 0 {
        let _ = CoordinatorConfig::from_file(&path, insecure_dev);
    } else {
        let _ = NodeConfig::from_file(&path, insecure_dev);
    }
}
