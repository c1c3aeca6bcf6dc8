//! `privet anonymize IN OUT`: faces and licence plates in images (JPEG, PNG) and videos (anything
//! ffmpeg reads) blurred, pixelated, blacked out or removed; moving objects erased from
//! static-camera video.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use privet_media::{FrameReader, FrameWriter, MediaLimits, WriterConfig, probe};
use privet_vision::background::{BackgroundConfig, ForegroundConfig, MotionAwareMedian};
use privet_vision::boxes::{BoxesFile, FrameBoxes, Source};
use privet_vision::imageio::{SizeLimits, StillFormat};
use privet_vision::track::TrackerConfig;
use privet_vision::video::{VideoAnonymizer, VideoConfig, detect_in_parallel};
use privet_vision::{
    AnonymizeConfig, CascadeConfig, CascadeDetector, Detector, ImagePolicy, Mode, ObjectKind,
    SeetaConfig, SeetaFace, Shape, VisionError,
};

/// Arguments of `privet anonymize`.
#[derive(Debug, Args)]
pub struct AnonymizeArgs {
    /// Input: a JPEG or PNG image, or a video (any container and codec ffmpeg reads).
    pub input: PathBuf,
    /// Output: same kind as the input (.jpg/.png for images; .mp4, .mkv, ... for video).
    pub output: PathBuf,
    /// How to cover: blur, pixelate, solid (black) or remove (background in video, inpainting
    /// in images).
    #[arg(long, default_value = "blur", value_parser = ["blur", "pixelate", "solid", "remove"])]
    pub mode: String,
    /// What to cover: faces, plates or both (comma separated).
    #[arg(long, default_value = "faces")]
    pub what: String,
    /// Face detector's score threshold [default: 2.0 for the built-in SeetaFace, 0.2 for an ONNX
    /// model; lower covers more].
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Multiply each box's sides by this before covering.
    #[arg(long, default_value_t = 1.3)]
    pub mask_scale: f32,
    /// Write what was detected and covered, frame by frame, to this JSON file.
    #[arg(long, value_name = "FILE.json")]
    pub boxes: Option<PathBuf>,
    /// Keep the input's audio (video; by default audio and metadata are dropped).
    #[arg(long)]
    pub keep_audio: bool,
    /// An ONNX face detector instead of the built-in one (e.g. CenterFace's centerface.onnx).
    #[arg(long, value_name = "FILE.onnx")]
    pub face_model: Option<PathBuf>,
    /// An ONNX plate detector instead of the built-in Haar cascade (rows of x0,y0,x1,y1,score).
    #[arg(long, value_name = "FILE.onnx")]
    pub plate_model: Option<PathBuf>,
    /// Output layout of --face-model: centerface, or boxes (rows of x0,y0,x1,y1,score).
    #[arg(long, default_value = "centerface", value_parser = ["centerface", "boxes"])]
    pub face_model_format: String,
    /// ONNX detectors see a copy whose longer side is at most this many pixels [default: full size].
    #[arg(long)]
    pub detect_size: Option<u32>,
    /// Images: err on the side of covering (mirrored and enlarged detection passes, whole boxes).
    #[arg(long)]
    pub cautious: bool,
    /// Video from a static camera: estimate the background and replace everything that moves.
    #[arg(long)]
    pub erase_moving: bool,
    /// Video: frames held back so a face found late is also covered on earlier frames.
    #[arg(long, default_value_t = 4)]
    pub lookback: u32,
    /// Video: frames a face stays covered after the detector last saw it.
    #[arg(long, default_value_t = 10)]
    pub max_missed: u32,
    /// Video: threads that run the detectors, each on its own frames (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// No summary line.
    #[arg(long, short)]
    pub quiet: bool,
}

fn bad_arg(msg: impl Into<String>) -> anyhow::Error {
    VisionError::InvalidConfig(msg.into()).into()
}

fn kinds(what: &str) -> Result<Vec<ObjectKind>> {
    let mut out = Vec::new();
    for part in what.split(',').filter(|p| !p.trim().is_empty()) {
        let k = ObjectKind::parse(part)
            .ok_or_else(|| bad_arg(format!("--what: unknown {part:?} (faces, plates)")))?;
        if !out.contains(&k) {
            out.push(k);
        }
    }
    if out.is_empty() {
        return Err(bad_arg("--what names nothing to cover"));
    }
    Ok(out)
}

fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.len() > max {
        bail!(VisionError::Decode(format!(
            "{} is larger than {max} bytes",
            path.display()
        )));
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn build_detectors(a: &AnonymizeArgs, cautious: bool) -> Result<Vec<Box<dyn Detector>>> {
    let mut dets: Vec<Box<dyn Detector>> = Vec::new();
    for k in kinds(&a.what)? {
        match k {
            ObjectKind::Face => match &a.face_model {
                Some(p) => dets.push(onnx_detector(a, p, ObjectKind::Face, &a.face_model_format)?),
                None => {
                    let default = if cautious { 1.0 } else { 2.0 };
                    let threshold = f64::from(a.threshold.unwrap_or(default));
                    dets.push(Box::new(SeetaFace::new(SeetaConfig {
                        threshold,
                        ..Default::default()
                    })?));
                }
            },
            ObjectKind::Plate => match &a.plate_model {
                Some(p) => dets.push(onnx_detector(a, p, ObjectKind::Plate, "boxes")?),
                None => {
                    let min_neighbors = if cautious { 2 } else { 3 };
                    dets.push(Box::new(CascadeDetector::plates(CascadeConfig {
                        min_neighbors,
                        ..Default::default()
                    })?));
                }
            },
        }
    }
    Ok(dets)
}

#[cfg(feature = "onnx")]
fn onnx_detector(
    a: &AnonymizeArgs,
    path: &Path,
    kind: ObjectKind,
    format: &str,
) -> Result<Box<dyn Detector>> {
    use privet_vision::{OnnxConfig, OnnxDetector, OnnxFormat};
    let bytes = read_limited(path, privet_vision::detect::onnx::MAX_ONNX_BYTES as u64)
        .map_err(|e| VisionError::BadModel(format!("{}: {e}", path.display())))?;
    let mut cfg = OnnxConfig::centerface();
    cfg.kind = kind;
    cfg.max_side = a.detect_size;
    if format == "boxes" {
        cfg.format = OnnxFormat::Boxes;
        cfg.threshold = 0.5;
    }
    if kind == ObjectKind::Face
        && let Some(t) = a.threshold
    {
        cfg.threshold = t;
    }
    let d = OnnxDetector::from_bytes(&bytes, cfg)
        .map_err(|e| VisionError::BadModel(format!("{}: {e}", path.display())))?;
    Ok(Box::new(d))
}

#[cfg(not(feature = "onnx"))]
fn onnx_detector(
    _: &AnonymizeArgs,
    path: &Path,
    _: ObjectKind,
    _: &str,
) -> Result<Box<dyn Detector>> {
    Err(bad_arg(format!(
        "{}: this privet was built without ONNX support (rebuild with the default features)",
        path.display()
    )))
}

fn is_image(p: &Path) -> Option<StillFormat> {
    p.extension()
        .and_then(|e| e.to_str())
        .and_then(StillFormat::from_extension)
}

fn write_boxes(path: &Path, file: &BoxesFile) -> Result<()> {
    privet_sim::write_atomic(path, file.to_json().as_bytes())?;
    Ok(())
}

/// Runs the command.
pub fn run(a: &AnonymizeArgs) -> Result<()> {
    let mode = Mode::parse(&a.mode).ok_or_else(|| bad_arg(format!("--mode {}", a.mode)))?;
    if let Some(t) = a.threshold
        && !(t.is_finite() && t > 0.0)
    {
        return Err(bad_arg("--threshold must be a positive number"));
    }
    let cfg = AnonymizeConfig {
        mode,
        mask_scale: a.mask_scale,
        ..Default::default()
    };
    cfg.check()?;
    match (is_image(&a.input), is_image(&a.output)) {
        (Some(_), Some(fmt)) => image(a, cfg, fmt),
        (None, None) => video(a, cfg),
        _ => Err(bad_arg(
            "input and output must both be images (.jpg/.png) or both videos",
        )),
    }
}

fn image(a: &AnonymizeArgs, mut cfg: AnonymizeConfig, fmt: StillFormat) -> Result<()> {
    if a.erase_moving || a.keep_audio {
        return Err(bad_arg(
            "--erase-moving and --keep-audio apply to video only",
        ));
    }
    if a.cautious {
        cfg.face_shape = Shape::Rect;
    }
    let mut detectors = build_detectors(a, a.cautious)?;
    let bytes = read_limited(&a.input, 512 << 20)?;
    let mut img = privet_vision::imageio::decode(&bytes, &SizeLimits::default())
        .with_context(|| a.input.display().to_string())?;
    let t = Instant::now();
    let dets = privet_vision::anonymize_image(
        &mut img,
        &mut detectors,
        &cfg,
        &ImagePolicy {
            cautious: a.cautious,
        },
    )?;
    let out = privet_vision::imageio::encode(&img, fmt)?;
    privet_sim::write_atomic(&a.output, &out)?;
    if let Some(p) = &a.boxes {
        let boxes = dets.iter().map(|d| (*d, Source::Detected)).collect();
        write_boxes(
            p,
            &BoxesFile {
                width: img.width(),
                height: img.height(),
                frames: vec![FrameBoxes { frame: 0, boxes }],
            },
        )?;
    }
    if !a.quiet {
        let faces = dets.iter().filter(|d| d.kind == ObjectKind::Face).count();
        let plates = dets.len() - faces;
        eprintln!(
            "{}: {faces} face(s), {plates} plate(s) covered ({}) in {:.0} ms -> {}",
            a.input.display(),
            a.mode,
            t.elapsed().as_secs_f64() * 1e3,
            a.output.display()
        );
    }
    Ok(())
}

fn to_image(info: &privet_media::VideoInfo, raw: Vec<u8>) -> Result<image::RgbImage> {
    image::RgbImage::from_raw(info.width, info.height, raw)
        .ok_or_else(|| VisionError::Decode("frame of the wrong size".into()).into())
}

fn video(a: &AnonymizeArgs, cfg: AnonymizeConfig) -> Result<()> {
    if a.cautious {
        return Err(bad_arg(
            "--cautious applies to images; video relies on the tracker",
        ));
    }
    let threads = match a.threads {
        Some(0) => return Err(bad_arg("--threads must be at least 1")),
        Some(n) => n.min(64),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    privet_media::check_ffmpeg()?;
    let info = probe(&a.input, &MediaLimits::default())?;
    // Bad detector options (a missing or broken model) fail here, before any frame is read;
    // the detection threads then build their own detectors.
    drop(build_detectors(a, false)?);
    let t = Instant::now();
    let need_bg = a.erase_moving || cfg.mode == Mode::Remove;
    let background = if need_bg {
        let mut est = MotionAwareMedian::new(info.width, info.height, BackgroundConfig::default())?;
        let mut r = FrameReader::open(&a.input, &info)?;
        while let Some(f) = r.next_frame()? {
            est.push(&to_image(&info, f)?)?;
        }
        Some(est.finish()?)
    } else {
        None
    };
    let vcfg = VideoConfig {
        anonymize: cfg,
        tracker: TrackerConfig {
            max_missed: a.max_missed,
            ..Default::default()
        },
        lookback: a.lookback,
        erase_moving: a.erase_moving.then(ForegroundConfig::default),
    };
    // Detection runs on every frame, so faces are looked for even where moving objects are
    // erased.
    let mut pipe = VideoAnonymizer::new(vcfg, Vec::new(), background)?;
    let mut reader = FrameReader::open(&a.input, &info)?;
    let mut writer = FrameWriter::create(
        &a.output,
        &info,
        &WriterConfig {
            keep_audio: a.keep_audio,
            codec: None,
        },
    )?;
    let mut frames = Vec::new();
    let (mut n, mut covered) = (0u64, 0usize);
    let mut emit =
        |outs: Vec<privet_vision::video::OutFrame>, writer: &mut FrameWriter| -> Result<()> {
            for o in outs {
                writer.write_frame(o.image.as_raw())?;
                n += 1;
                covered += o.boxes.boxes.len();
                if a.boxes.is_some() {
                    frames.push(o.boxes);
                }
            }
            Ok(())
        };
    detect_in_parallel(
        threads,
        &|| build_detectors(a, false),
        || reader.next_frame()?.map(|f| to_image(&info, f)).transpose(),
        |frame, dets| emit(pipe.push_detected(frame, &dets)?, &mut writer),
    )?;
    emit(pipe.finish()?, &mut writer)?;
    writer.finish()?;
    if let Some(p) = &a.boxes {
        write_boxes(
            p,
            &BoxesFile {
                width: info.width,
                height: info.height,
                frames,
            },
        )?;
    }
    if !a.quiet {
        let secs = t.elapsed().as_secs_f64();
        eprintln!(
            "{}: {n} frames, {covered} boxes covered ({}{}) in {secs:.1} s ({:.1} frames/s) -> {}",
            a.input.display(),
            a.mode,
            if a.erase_moving {
                ", moving objects erased"
            } else {
                ""
            },
            n as f64 / secs.max(1e-9),
            a.output.display()
        );
    }
    Ok(())
}
