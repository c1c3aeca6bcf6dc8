//! Exports a privet model's plain layers, a CSV encoded as the model was trained, the labels
//! and the plaintext model's predicted classes as JSON, so that the TenSEAL side of
//! bench/he/ evaluates the very same weights on the very same inputs.
//!
//! `cargo run --release -p privet-he-service --example he_export -- MODEL CSV OUT.json`

use privet_he::inference::Layer;
use privet_he_service::plain_model;
use privet_ml::TrainedModel;
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, model, csv, out] = args.as_slice() else {
        return Err("usage: he_export MODEL CSV OUT.json".into());
    };
    let model = TrainedModel::load(model.as_ref())?;
    let plain = plain_model(&model)?;
    let (x, labels) = model.meta().encode_csv(csv.as_ref())?;
    let probs = model.predict_matrix(&x)?;
    let k = model.network.num_classes();
    let plain_classes: Vec<usize> = probs
        .chunks_exact(k)
        .map(|r| {
            r.iter()
                .enumerate()
                .fold(0, |b, (i, &p)| if p > r[b] { i } else { b })
        })
        .collect();
    let layers: Vec<serde_json::Value> = plain
        .layers()
        .iter()
        .map(|l| match l {
            Layer::Dense { rows, cols, weights, bias } => {
                json!({"kind": "dense", "rows": rows, "cols": cols, "weights": weights, "bias": bias})
            }
            Layer::Square => json!({"kind": "square"}),
        })
        .collect();
    let rows: Vec<Vec<f32>> = (0..x.rows)
        .map(|r| x.data[r * x.cols..(r + 1) * x.cols].to_vec())
        .collect();
    let v = json!({
        "classes": k,
        "layers": layers,
        "x": rows,
        "labels": labels,
        "plain_classes": plain_classes,
    });
    std::fs::write(out, serde_json::to_vec(&v)?)?;
    Ok(())
}
