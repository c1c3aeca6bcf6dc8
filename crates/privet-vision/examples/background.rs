//! Background estimation on a folder of PNG frames (used by bench/vision): writes
//! `PREFIX_motion_aware.png` and `PREFIX_temporal_median.png` and prints the seconds each took
//! (decoding excluded) as JSON.
//!
//! usage: cargo run --release -p privet-vision --example background -- FRAMES_DIR PREFIX [WINDOW]

use std::time::Instant;

use privet_vision::background::{BackgroundConfig, MotionAwareMedian, TemporalMedian};
use privet_vision::imageio::{SizeLimits, StillFormat, decode, encode};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 && args.len() != 4 {
        return Err("usage: background FRAMES_DIR PREFIX [WINDOW]".into());
    }
    let window: u32 = args.get(3).map(|w| w.parse()).transpose()?.unwrap_or(0);
    let mut files: Vec<_> = std::fs::read_dir(&args[1])?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    let frames = files
        .iter()
        .map(|p| Ok(decode(&std::fs::read(p)?, &SizeLimits::default())?))
        .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()?;
    let first = frames.first().ok_or("no frames")?;
    let t = Instant::now();
    let mut ma = MotionAwareMedian::new(
        first.width(),
        first.height(),
        BackgroundConfig {
            window,
            ..BackgroundConfig::default()
        },
    )?;
    for f in &frames {
        ma.push(f)?;
    }
    let bg = ma.finish()?;
    let t_ma = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut tm = TemporalMedian::new(256);
    for f in &frames {
        tm.push(f)?;
    }
    let med = tm.finish()?;
    let t_tm = t.elapsed().as_secs_f64();
    std::fs::write(
        format!("{}_motion_aware.png", args[2]),
        encode(&bg, StillFormat::Png)?,
    )?;
    std::fs::write(
        format!("{}_temporal_median.png", args[2]),
        encode(&med, StillFormat::Png)?,
    )?;
    println!(
        "{{\"frames\": {}, \"motion_aware_seconds\": {t_ma}, \"temporal_median_seconds\": {t_tm}}}",
        frames.len()
    );
    Ok(())
}
