//! The re-identification attack's fuller figures (bench/vision): top-1 accuracy of a classifier
//! trained on obfuscated pictures of generated people, per obfuscation mode, as JSON.
//!
//! usage: cargo run --release -p privet-vision --example reid

use privet_vision::Mode;
use privet_vision::reid::{AttackConfig, attack};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rows = Vec::new();
    for identities in [5usize, 10, 20] {
        for seed in [1u64, 2, 3] {
            let cfg = AttackConfig {
                identities,
                train_per_identity: 40,
                test_per_identity: 25,
                seed,
                mask_scale: 1.3,
            };
            let mut row = format!(
                "{{\"identities\": {identities}, \"seed\": {seed}, \"chance\": {:.4}",
                1.0 / identities as f64
            );
            for (name, m) in [
                ("clear", None),
                ("blur", Some(Mode::Blur)),
                ("pixelate", Some(Mode::Pixelate)),
                ("solid", Some(Mode::Solid)),
                ("remove", Some(Mode::Remove)),
            ] {
                row.push_str(&format!(", \"{name}\": {:.4}", attack(&cfg, m)?));
            }
            row.push('}');
            eprintln!("{row}");
            rows.push(row);
        }
    }
    println!("[{}]", rows.join(",\n"));
    Ok(())
}
