//! `privet anonymize` end to end: the real binary on the committed test images (public domain /
//! CC0, see crates/privet-vision/tests/data/README.md) and on short clips made with ffmpeg here.
//! The video tests need ffmpeg (.ci/run installs it) and say so when it is missing.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use tempfile::TempDir;

fn privet(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("privet").expect("binary built");
    cmd.current_dir(dir);
    cmd
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../privet-vision/tests/data")
        .join(name)
}

fn have_ffmpeg() -> bool {
    let ok = StdCommand::new("ffmpeg").arg("-version").output().is_ok();
    if !ok {
        eprintln!("ffmpeg not installed: video test skipped (apt-get install ffmpeg)");
    }
    ok
}

fn rgb(path: &Path) -> image::RgbImage {
    let bytes = std::fs::read(path).unwrap();
    image::load_from_memory(&bytes).unwrap().to_rgb8()
}

#[test]
fn an_image_face_is_blacked_out_and_the_boxes_file_says_where() {
    let dir = TempDir::new().unwrap();
    privet(dir.path())
        .args([
            "anonymize",
            data("astronaut_head.jpg").to_str().unwrap(),
            "out.png",
            "--mode",
            "solid",
            "--boxes",
            "b.json",
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains("1 face(s)"));
    let out = rgb(&dir.path().join("out.png"));
    // The face centre (the true face box is (37,46)-(132,141)) is black, a corner is not.
    assert_eq!(out.get_pixel(85, 95).0, [0, 0, 0]);
    assert_ne!(out.get_pixel(2, 2).0, [0, 0, 0]);
    let b: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("b.json")).unwrap()).unwrap();
    assert_eq!(b["format"], "privet-boxes");
    assert_eq!(b["version"], 1);
    let boxes = b["frames"][0]["boxes"].as_array().unwrap();
    assert_eq!(boxes.len(), 1);
    assert_eq!(boxes[0]["kind"], "face");
    let x0 = boxes[0]["x0"].as_f64().unwrap();
    assert!((20.0..60.0).contains(&x0), "{x0}");
}

#[test]
fn every_mode_changes_the_face_and_plates_are_covered_too() {
    let dir = TempDir::new().unwrap();
    let orig = rgb(&data("plate_composite.png"));
    for mode in ["blur", "pixelate", "solid", "remove"] {
        let out = format!("{mode}.png");
        privet(dir.path())
            .args([
                "anonymize",
                data("plate_composite.png").to_str().unwrap(),
                &out,
                "--what",
                "plates",
                "--mode",
                mode,
            ])
            .assert()
            .success()
            .stderr(predicate::str::contains("1 plate(s)"));
        let img = rgb(&dir.path().join(&out));
        // The plate's text (dark strokes on white, (60,100)-(241,140)) no longer shows: the
        // plate's spread of grey levels collapses.
        let spread = |im: &image::RgbImage| {
            let v: Vec<i32> = (105..136)
                .flat_map(|y| (66..236).map(move |x| (x, y)))
                .map(|(x, y)| im.get_pixel(x, y).0[0] as i32)
                .collect();
            let m = v.iter().sum::<i32>() as f64 / v.len() as f64;
            (v.iter().map(|&a| (a as f64 - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
        };
        assert!(
            spread(&img) < spread(&orig) * 0.5,
            "{mode}: {} vs {}",
            spread(&img),
            spread(&orig)
        );
    }
}

#[test]
fn bad_inputs_get_one_line_and_the_documented_exit_code() {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("junk.jpg"), b"this is not a jpeg").unwrap();
    privet(dir.path())
        .args(["anonymize", "junk.jpg", "o.jpg"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("cannot decode image"));
    privet(dir.path())
        .args(["anonymize", "missing.png", "o.png"])
        .assert()
        .failure();
    let head = data("astronaut_head.jpg");
    let h = head.to_str().unwrap();
    privet(dir.path())
        .args(["anonymize", h, "o.png", "--what", "cars"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--what"));
    privet(dir.path())
        .args(["anonymize", h, "o.mp4"])
        .assert()
        .code(2);
    privet(dir.path())
        .args(["anonymize", h, "o.png", "--mask-scale", "9"])
        .assert()
        .code(2);
    privet(dir.path())
        .args(["anonymize", h, "o.png", "--mode", "smudge"])
        .assert()
        .code(2);
    // Checked before ffmpeg is looked for or the input read.
    privet(dir.path())
        .args(["anonymize", "clip.mp4", "o.mp4", "--threads", "0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--threads must be at least 1"));
    std::fs::write(dir.path().join("bad.onnx"), b"not a model").unwrap();
    privet(dir.path())
        .args(["anonymize", h, "o.png", "--face-model", "bad.onnx"])
        .assert()
        .code(4);
    // Nothing half-written was left behind.
    assert!(!dir.path().join("o.png").exists());
}

#[test]
fn a_png_claiming_a_huge_size_is_refused() {
    let dir = TempDir::new().unwrap();
    // A 100000 x 100000 RGB PNG: a correct header, a tiny compressed stream, an end.
    fn chunk(png: &mut Vec<u8>, kind: &[u8], body: &[u8]) {
        let mut c = 0xFFFF_FFFFu32;
        for &b in kind.iter().chain(body) {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        png.extend((body.len() as u32).to_be_bytes());
        png.extend(kind);
        png.extend(body);
        png.extend((!c).to_be_bytes());
    }
    let mut ihdr = Vec::new();
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut png, b"IEND", &[]);
    std::fs::write(dir.path().join("bomb.png"), png).unwrap();
    privet(dir.path())
        .args(["anonymize", "bomb.png", "o.png"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("too large"));
}

/// A 24-frame clip of the astronaut's head moving over the brick wall, made with ffmpeg.
fn make_clip(dir: &Path, audio: bool) -> PathBuf {
    let bg = rgb(&data("brick_bg.jpg"));
    let head = rgb(&data("astronaut_head.jpg"));
    let head = image::imageops::resize(&head, 102, 114, image::imageops::FilterType::Triangle);
    for t in 0..24u32 {
        let mut f = bg.clone();
        image::imageops::overlay(&mut f, &head, 20 + 6 * i64::from(t), 60);
        f.save(dir.join(format!("f{t:02}.png"))).unwrap();
    }
    let out = dir.join(if audio { "clip_audio.mp4" } else { "clip.mp4" });
    let mut cmd = StdCommand::new("ffmpeg");
    cmd.args(["-v", "error", "-y", "-framerate", "12", "-i"])
        .arg(dir.join("f%02d.png"));
    if audio {
        cmd.args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2",
            "-c:a",
            "aac",
            "-shortest",
        ]);
    }
    cmd.args([
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-metadata",
        "title=secret place",
    ])
    .arg(&out);
    assert!(cmd.status().unwrap().success());
    out
}

fn probe(path: &Path) -> Value {
    let out = StdCommand::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
            "-count_frames",
        ])
        .arg(path)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_video_is_anonymized_frame_by_frame_without_audio_or_metadata() {
    if !have_ffmpeg() {
        return;
    }
    let dir = TempDir::new().unwrap();
    let clip = make_clip(dir.path(), true);
    privet(dir.path())
        .args([
            "anonymize",
            clip.to_str().unwrap(),
            "out.mp4",
            "--mode",
            "solid",
            "--boxes",
            "b.json",
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains("24 frames"));
    let p = probe(&dir.path().join("out.mp4"));
    let streams = p["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1, "audio dropped");
    assert_eq!(streams[0]["nb_read_frames"], "24");
    assert!(p["format"]["tags"]["title"].is_null(), "metadata dropped");
    let b: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("b.json")).unwrap()).unwrap();
    let frames = b["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 24);
    assert!(
        frames
            .iter()
            .all(|f| !f["boxes"].as_array().unwrap().is_empty()),
        "a frame without a box"
    );
    // With --keep-audio the sound stays.
    privet(dir.path())
        .args([
            "anonymize",
            clip.to_str().unwrap(),
            "kept.mp4",
            "--keep-audio",
            "-q",
        ])
        .assert()
        .success();
    let p = probe(&dir.path().join("kept.mp4"));
    assert!(
        p["streams"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["codec_type"] == "audio")
    );
}

#[test]
fn moving_objects_are_erased_from_a_static_camera_clip() {
    if !have_ffmpeg() {
        return;
    }
    let dir = TempDir::new().unwrap();
    let clip = make_clip(dir.path(), false);
    privet(dir.path())
        .args([
            "anonymize",
            clip.to_str().unwrap(),
            "erased.mkv",
            "--erase-moving",
            "--mode",
            "remove",
            "-q",
        ])
        .assert()
        .success();
    // Decode the middle frame and compare it with the empty wall.
    let frame = dir.path().join("mid.png");
    let ok = StdCommand::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(dir.path().join("erased.mkv"))
        .args(["-vf", "select=eq(n\\,12)", "-frames:v", "1"])
        .arg(&frame)
        .status()
        .unwrap();
    assert!(ok.success());
    let got = rgb(&frame);
    let wall = rgb(&data("brick_bg.jpg"));
    let (mut n, mut off) = (0, 0);
    for (a, b) in got.pixels().zip(wall.pixels()) {
        n += 1;
        if (0..3).any(|c| a.0[c].abs_diff(b.0[c]) > 40) {
            off += 1;
        }
    }
    // The head covered about 15% of the frame; after erasing, under 3% differs from the wall.
    assert!(
        (off as f64) < 0.03 * n as f64,
        "{off} of {n} pixels differ from the wall"
    );
}

#[test]
fn a_missing_ffmpeg_is_one_clear_line() {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("in.mp4"), b"whatever").unwrap();
    privet(dir.path())
        .env("PATH", dir.path())
        .args(["anonymize", "in.mp4", "out.mp4"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("ffmpeg not found")
                .and(predicate::str::contains("apt-get install ffmpeg")),
        );
}
