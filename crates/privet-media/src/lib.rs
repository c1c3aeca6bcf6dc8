//! # privet-media
//!
//! Video frames in and out of an `ffmpeg` child process over raw rgb24 pipes. This is the only
//! place in privet's vision stack that spawns a process: `privet-vision` sees frames only.
//!
//! - [`probe`] reads a video's size, frame rate and whether it has audio (`ffprobe`).
//! - [`FrameReader`] decodes any container/codec ffmpeg reads into packed RGB frames.
//! - [`FrameWriter`] encodes RGB frames into a file named by its extension (H.264 for
//!   mp4/mkv/mov where ffmpeg has libx264), optionally copying the input's audio; metadata and
//!   chapters are dropped. It writes to a temporary file beside the target and renames it when
//!   ffmpeg succeeds, so a failed run leaves nothing half-written.
//!
//! When `ffmpeg` or `ffprobe` is not on `PATH`, every call fails with [`MediaError::Missing`],
//! whose message says how to install it.
//!
//! ```no_run
//! use privet_media::{probe, FrameReader, FrameWriter, WriterConfig};
//! let info = probe("in.mp4".as_ref(), &Default::default())?;
//! let mut r = FrameReader::open("in.mp4".as_ref(), &info)?;
//! let mut w = FrameWriter::create("out.mp4".as_ref(), &info, &WriterConfig::default())?;
//! while let Some(frame) = r.next_frame()? {
//!     w.write_frame(&frame)?;
//! }
//! w.finish()?;
//! # Ok::<(), privet_media::MediaError>(())
//! ```

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;

/// Everything that can go wrong talking to ffmpeg.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// ffmpeg or ffprobe is not installed.
    #[error(
        "{0} not found: video needs ffmpeg (Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg; Windows: winget install ffmpeg)"
    )]
    Missing(&'static str),
    /// ffprobe or ffmpeg refused the input (not a video, unreadable, no video stream).
    #[error("cannot read video {path}: {reason}")]
    BadInput {
        /// The file.
        path: String,
        /// What ffmpeg said.
        reason: String,
    },
    /// The video's frames are larger than allowed.
    #[error("video frames of {width}x{height} exceed the limit of {max_pixels} pixels")]
    TooLarge {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Limit.
        max_pixels: u64,
    },
    /// Encoding or writing the output failed.
    #[error("cannot write video {path}: {reason}")]
    Output {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A frame handed to the writer has the wrong size.
    #[error("frame has {got} bytes, expected {want}")]
    FrameSize {
        /// Bytes received.
        got: usize,
        /// Bytes expected.
        want: usize,
    },
}

/// Results in this crate.
pub type Result<T> = std::result::Result<T, MediaError>;

/// Limits on what is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaLimits {
    /// Largest width x height of a frame.
    pub max_pixels: u64,
    /// Largest side.
    pub max_side: u32,
}

impl Default for MediaLimits {
    /// 8K (7680 x 4320 = 33.2 megapixels), at most 8192 per side.
    fn default() -> Self {
        MediaLimits {
            max_pixels: 7680 * 4320,
            max_side: 8192,
        }
    }
}

/// What `ffprobe` says about a video's first video stream.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// The file.
    pub path: PathBuf,
    /// Width as displayed (after the rotation ffmpeg applies).
    pub width: u32,
    /// Height as displayed.
    pub height: u32,
    /// Frame rate numerator.
    pub fps_num: u32,
    /// Frame rate denominator.
    pub fps_den: u32,
    /// Whether the file has an audio stream.
    pub has_audio: bool,
    /// Number of frames if the container says.
    pub frames: Option<u64>,
}

impl VideoInfo {
    /// Frames per second.
    pub fn fps(&self) -> f64 {
        f64::from(self.fps_num) / f64::from(self.fps_den.max(1))
    }

    /// Bytes of one rgb24 frame.
    pub fn frame_bytes(&self) -> usize {
        self.width as usize * self.height as usize * 3
    }
}

fn spawn(cmd: &mut Command, tool: &'static str) -> Result<Child> {
    cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => MediaError::Missing(tool),
        _ => MediaError::BadInput {
            path: tool.into(),
            reason: e.to_string(),
        },
    })
}

/// Whether `ffmpeg` runs; the error says how to install it.
pub fn check_ffmpeg() -> Result<()> {
    let out = spawn(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "ffmpeg",
    )?;
    let mut out = out;
    let _ = out.wait();
    Ok(())
}

fn parse_rate(s: &str) -> Option<(u32, u32)> {
    let (n, d) = s.split_once('/').unwrap_or((s, "1"));
    let (n, d): (u32, u32) = (n.trim().parse().ok()?, d.trim().parse().ok()?);
    if n == 0 || d == 0 || n / d > 1000 {
        None
    } else {
        Some((n, d))
    }
}

/// Reads a video's properties with `ffprobe`.
pub fn probe(path: &Path, limits: &MediaLimits) -> Result<VideoInfo> {
    let bad = |reason: String| MediaError::BadInput {
        path: path.display().to_string(),
        reason,
    };
    if !path.is_file() {
        return Err(bad("no such file".into()));
    }
    let child = spawn(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-print_format",
                "json",
                "-show_streams",
                "-show_format",
            ])
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "ffprobe",
    )?;
    let out = child.wait_with_output().map_err(|e| bad(e.to_string()))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        return Err(bad(msg
            .lines()
            .last()
            .unwrap_or("ffprobe failed")
            .trim()
            .to_string()));
    }
    if out.stdout.len() > 16 << 20 {
        return Err(bad("ffprobe output too large".into()));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| bad(format!("ffprobe output: {e}")))?;
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video" && s["disposition"]["attached_pic"] != 1)
        .ok_or_else(|| bad("no video stream".into()))?;
    let has_audio = streams.iter().any(|s| s["codec_type"] == "audio");
    let dim = |k: &str| {
        video[k]
            .as_u64()
            .filter(|&d| d > 0 && d <= u64::from(u32::MAX))
            .map(|d| d as u32)
    };
    let (mut w, mut h) = (
        dim("width").ok_or_else(|| bad("no width".into()))?,
        dim("height").ok_or_else(|| bad("no height".into()))?,
    );
    // ffmpeg rotates frames on decode; a quarter turn swaps the sides.
    let mut rotation = video["tags"]["rotate"]
        .as_str()
        .and_then(|r| r.parse::<i64>().ok())
        .unwrap_or(0);
    if let Some(sd) = video["side_data_list"].as_array() {
        for d in sd {
            if let Some(r) = d["rotation"].as_i64() {
                rotation = r;
            }
        }
    }
    if rotation.rem_euclid(180) == 90 {
        std::mem::swap(&mut w, &mut h);
    }
    if w > limits.max_side || h > limits.max_side || u64::from(w) * u64::from(h) > limits.max_pixels
    {
        return Err(MediaError::TooLarge {
            width: w,
            height: h,
            max_pixels: limits.max_pixels,
        });
    }
    let (fps_num, fps_den) = video["avg_frame_rate"]
        .as_str()
        .and_then(parse_rate)
        .or_else(|| video["r_frame_rate"].as_str().and_then(parse_rate))
        .unwrap_or((25, 1));
    let frames = video["nb_frames"].as_str().and_then(|s| s.parse().ok());
    Ok(VideoInfo {
        path: path.to_path_buf(),
        width: w,
        height: h,
        fps_num,
        fps_den,
        has_audio,
        frames,
    })
}

/// Collects a child's stderr on a thread (bounded), so the child never blocks on a full pipe.
fn drain(mut r: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            if buf.len() < 64 << 10 {
                buf.extend_from_slice(&chunk[..n]);
            }
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Decodes a video into rgb24 frames.
#[derive(Debug)]
pub struct FrameReader {
    child: Child,
    stdout: ChildStdout,
    stderr: Option<JoinHandle<String>>,
    frame_bytes: usize,
    path: String,
    done: bool,
}

impl FrameReader {
    /// Starts decoding `path` (as probed).
    pub fn open(path: &Path, info: &VideoInfo) -> Result<FrameReader> {
        let mut child = spawn(
            Command::new("ffmpeg")
                .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i"])
                .arg(path)
                .args([
                    "-map",
                    "0:v:0",
                    "-fps_mode",
                    "passthrough",
                    "-f",
                    "rawvideo",
                    "-pix_fmt",
                    "rgb24",
                ])
                .args(["-vf", &format!("scale={}:{}", info.width, info.height)])
                .arg("-")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
            "ffmpeg",
        )?;
        let stdout = child.stdout.take().ok_or_else(|| MediaError::BadInput {
            path: path.display().to_string(),
            reason: "no stdout".into(),
        })?;
        let stderr = child.stderr.take().map(drain);
        Ok(FrameReader {
            child,
            stdout,
            stderr,
            frame_bytes: info.frame_bytes(),
            path: path.display().to_string(),
            done: false,
        })
    }

    /// The next frame (`width * height * 3` bytes, rows top to bottom), or `None` at the end.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let mut buf = vec![0u8; self.frame_bytes];
        let mut got = 0;
        while got < buf.len() {
            match self.stdout.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(MediaError::BadInput {
                        path: self.path.clone(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        if got == buf.len() {
            return Ok(Some(buf));
        }
        self.done = true;
        let status = self.child.wait().map_err(|e| MediaError::BadInput {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let err = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        if !status.success() {
            return Err(MediaError::BadInput {
                path: self.path.clone(),
                reason: last_line(&err),
            });
        }
        if got != 0 {
            return Err(MediaError::BadInput {
                path: self.path.clone(),
                reason: format!("truncated frame ({got} of {} bytes)", self.frame_bytes),
            });
        }
        Ok(None)
    }
}

impl Drop for FrameReader {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Settings of the writer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterConfig {
    /// Copy the input's audio streams (otherwise the output has none).
    pub keep_audio: bool,
    /// Video codec for ffmpeg's `-c:v` (default: libx264 at CRF 18 for mp4/mkv/mov/m4v, else
    /// ffmpeg's default for the container).
    pub codec: Option<String>,
}

/// Encodes rgb24 frames into a video file.
#[derive(Debug)]
pub struct FrameWriter {
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: Option<JoinHandle<String>>,
    frame_bytes: usize,
    tmp: PathBuf,
    out: PathBuf,
    finished: bool,
}

impl FrameWriter {
    /// Starts an encoder writing `out` for frames of `info`'s size and rate; `info.path` is the
    /// source of the audio when `keep_audio` is set.
    pub fn create(out: &Path, info: &VideoInfo, cfg: &WriterConfig) -> Result<FrameWriter> {
        let oerr = |reason: String| MediaError::Output {
            path: out.display().to_string(),
            reason,
        };
        let ext = out
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .ok_or_else(|| oerr("the output needs an extension (.mp4, .mkv, ...)".into()))?;
        let name = out
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| oerr("bad file name".into()))?;
        let dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".{name}.privet-partial.{ext}"));
        let mut cmd = Command::new("ffmpeg");
        cmd.args([
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
        ])
        .args(["-s", &format!("{}x{}", info.width, info.height)])
        .args([
            "-framerate",
            &format!("{}/{}", info.fps_num, info.fps_den.max(1)),
        ])
        .args(["-i", "-"]);
        if cfg.keep_audio && info.has_audio {
            cmd.arg("-i").arg(&info.path).args([
                "-map",
                "0:v:0",
                "-map",
                "1:a",
                "-c:a",
                "copy",
                "-shortest",
            ]);
        } else {
            cmd.args(["-map", "0:v:0", "-an"]);
        }
        cmd.args(["-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn"]);
        let h264 = matches!(ext.as_str(), "mp4" | "mkv" | "mov" | "m4v");
        match &cfg.codec {
            Some(c) => {
                cmd.args(["-c:v", c]);
            }
            None if h264 => {
                cmd.args(["-c:v", "libx264", "-crf", "18", "-preset", "veryfast"]);
            }
            None => {}
        }
        if (h264 && cfg.codec.is_none()) || cfg.codec.as_deref() == Some("libx264") {
            // 4:2:0 needs even sides.
            cmd.args([
                "-pix_fmt",
                "yuv420p",
                "-vf",
                "pad=ceil(iw/2)*2:ceil(ih/2)*2",
            ]);
        }
        cmd.arg(&tmp)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = spawn(&mut cmd, "ffmpeg")?;
        let stdin = child.stdin.take();
        let stderr = child.stderr.take().map(drain);
        Ok(FrameWriter {
            child,
            stdin,
            stderr,
            frame_bytes: info.frame_bytes(),
            tmp,
            out: out.to_path_buf(),
            finished: false,
        })
    }

    fn fail(&mut self) -> MediaError {
        self.stdin.take();
        let _ = self.child.wait();
        let err = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let _ = std::fs::remove_file(&self.tmp);
        self.finished = true;
        MediaError::Output {
            path: self.out.display().to_string(),
            reason: last_line(&err),
        }
    }

    /// Writes one frame.
    pub fn write_frame(&mut self, rgb: &[u8]) -> Result<()> {
        if rgb.len() != self.frame_bytes {
            return Err(MediaError::FrameSize {
                got: rgb.len(),
                want: self.frame_bytes,
            });
        }
        let ok = match self.stdin.as_mut() {
            Some(s) => s.write_all(rgb).is_ok(),
            None => false,
        };
        if ok { Ok(()) } else { Err(self.fail()) }
    }

    /// Closes the stream, waits for ffmpeg and moves the file into place.
    pub fn finish(mut self) -> Result<()> {
        self.stdin.take();
        let status = self.child.wait().map_err(|e| MediaError::Output {
            path: self.out.display().to_string(),
            reason: e.to_string(),
        })?;
        let err = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        self.finished = true;
        if !status.success() {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(MediaError::Output {
                path: self.out.display().to_string(),
                reason: last_line(&err),
            });
        }
        std::fs::rename(&self.tmp, &self.out).map_err(|e| {
            let _ = std::fs::remove_file(&self.tmp);
            MediaError::Output {
                path: self.out.display().to_string(),
                reason: e.to_string(),
            }
        })
    }
}

impl Drop for FrameWriter {
    fn drop(&mut self) {
        if !self.finished {
            self.stdin.take();
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn have_ffmpeg() -> bool {
        Command::new("ffmpeg")
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    }

    #[test]
    fn rates_parse_and_nonsense_is_refused() {
        assert_eq!(parse_rate("30000/1001"), Some((30000, 1001)));
        assert_eq!(parse_rate("25"), Some((25, 1)));
        assert_eq!(parse_rate("0/0"), None);
        assert_eq!(parse_rate("x"), None);
    }

    #[test]
    fn frames_round_trip_through_a_lossless_file() {
        if !have_ffmpeg() {
            eprintln!("ffmpeg not installed: skipping the round trip (CI installs it)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a.mkv");
        let info = VideoInfo {
            path: out.clone(),
            width: 33,
            height: 17,
            fps_num: 10,
            fps_den: 1,
            has_audio: false,
            frames: None,
        };
        let mut w = FrameWriter::create(
            &out,
            &info,
            &WriterConfig {
                keep_audio: false,
                codec: Some("ffv1".into()),
            },
        )
        .unwrap();
        let frames: Vec<Vec<u8>> = (0..5u8)
            .map(|k| {
                (0..info.frame_bytes())
                    .map(|i| (i as u8).wrapping_mul(7).wrapping_add(k * 40))
                    .collect()
            })
            .collect();
        for f in &frames {
            w.write_frame(f).unwrap();
        }
        assert!(matches!(
            w.write_frame(&[0u8; 3]),
            Err(MediaError::FrameSize { .. })
        ));
        w.finish().unwrap();
        let got = probe(&out, &MediaLimits::default()).unwrap();
        assert_eq!(
            (
                got.width,
                got.height,
                got.fps_num,
                got.fps_den,
                got.has_audio
            ),
            (33, 17, 10, 1, false)
        );
        let mut r = FrameReader::open(&out, &got).unwrap();
        let mut back = Vec::new();
        while let Some(f) = r.next_frame().unwrap() {
            back.push(f);
        }
        assert_eq!(back, frames);
        // Nothing left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_file_that_is_not_a_video_is_a_clear_error() {
        if !have_ffmpeg() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.mp4");
        std::fs::write(&p, b"not a video at all").unwrap();
        assert!(matches!(
            probe(&p, &MediaLimits::default()),
            Err(MediaError::BadInput { .. })
        ));
        assert!(matches!(
            probe(&dir.path().join("missing.mp4"), &MediaLimits::default()),
            Err(MediaError::BadInput { .. })
        ));
        let small = MediaLimits {
            max_pixels: 100,
            max_side: 10,
        };
        let out = dir.path().join("b.mkv");
        let info = VideoInfo {
            path: out.clone(),
            width: 16,
            height: 16,
            fps_num: 5,
            fps_den: 1,
            has_audio: false,
            frames: None,
        };
        let mut w = FrameWriter::create(
            &out,
            &info,
            &WriterConfig {
                keep_audio: false,
                codec: Some("ffv1".into()),
            },
        )
        .unwrap();
        w.write_frame(&vec![0u8; info.frame_bytes()]).unwrap();
        w.finish().unwrap();
        assert!(matches!(
            probe(&out, &small),
            Err(MediaError::TooLarge { .. })
        ));
    }
}
