//! Model files (privet-ml io): `model.json` + `model.safetensors`. The input is a 4-byte
//! little-endian length `m`, then `m` bytes of metadata, then the weights file.

use std::path::PathBuf;
use std::sync::OnceLock;

use privet_ml::{TrainedModel, meta_path};

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = crate::scratch_dir("model");
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    })
}

/// One fuzz input (see the module docs).
pub fn run(data: &[u8]) {
    let Some((len, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let m = (u32::from_le_bytes(*len) as usize).min(rest.len());
    let (meta, weights) = rest.split_at(m);
    let weights_path = dir().join("model.safetensors");
    if std::fs::write(&weights_path, weights).is_err()
        || std::fs::write(meta_path(&weights_path), meta).is_err()
    {
        return;
    }
    let _ = TrainedModel::load(&weights_path);
}
