"""privet anonymize against deface 1.5 (faces covered, false covers, frames per second) and
privet's background estimate against a temporal median and OpenCV's MOG2 (SBMnet metrics, speed).

usage: bench.py WORKDIR PRIVET_BINARY RESULTS.json
Runs each tool in turn on the same inputs, repeats timings (median), records the load average.
"""
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage

work, privet, results_path = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
venv_bin = Path(sys.executable).parent
deface = str(venv_bin / "deface")
import deface as deface_pkg  # noqa: E402

centerface = str(Path(deface_pkg.__file__).parent / "centerface.onnx")
REPEATS = int(os.environ.get("REPEATS", "3"))
SECTIONS = os.environ.get("SECTIONS", "images,video,background").split(",")
prev = json.loads(results_path.read_text()) if results_path.exists() else {}
results = {"loadavg_before": open("/proc/loadavg").read().split()[:3], "cores": os.cpu_count()}


def run(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t


def ellipse_share(black, b):
    x0, y0, x1, y1 = b
    h, w = black.shape
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    inside = ((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1
    return black[inside].mean() if inside.any() else 0.0


def score_frame(orig, out, boxes, cover=0.9):
    """Faces whose inscribed ellipse is at least 90% newly black; black blobs touching no face."""
    if out.shape != orig.shape:
        # deface writes video through imageio, which rescales frames to multiples of 16
        # (360 -> 368 rows); scale back to compare pixel by pixel.
        out = cv2.resize(np.ascontiguousarray(out), (orig.shape[1], orig.shape[0]), interpolation=cv2.INTER_NEAREST)
    newly = (out.max(axis=2) < 16) & (orig.max(axis=2) >= 16)
    covered = [ellipse_share(newly, b) >= cover for b in boxes]
    lab, n = ndimage.label(newly)
    false = 0
    for sl in ndimage.find_objects(lab):
        if sl is None:
            continue
        ys, xs = sl
        if (lab[sl] > 0).sum() < 400:  # compression noise in dark areas makes small blobs
            continue
        if not any(xs.start < b[2] and xs.stop > b[0] and ys.start < b[3] and ys.stop > b[1] for b in boxes):
            false += 1
    return covered, false


# ---------------------------------------------------------------- images
ann = json.loads((work / "images.json").read_text())
names = sorted(ann)
tools = {
    "deface": lambda src, dst: [deface, str(src), "-o", str(dst), "--replacewith", "solid"],
    "privet_seetaface": lambda src, dst: [privet, "anonymize", str(src), str(dst), "--mode", "solid", "-q"],
    "privet_seetaface_cautious": lambda src, dst: [privet, "anonymize", str(src), str(dst), "--mode", "solid", "--cautious", "-q"],
    "privet_centerface": lambda src, dst: [privet, "anonymize", str(src), str(dst), "--mode", "solid", "-q", "--face-model", centerface],
}
img_res = {}
cache = work / "out" / "images_results.json"
if os.environ.get("REUSE_IMAGES") and cache.exists():
    img_res = json.loads(cache.read_text())
for tool, cmd in tools.items():
    if tool in img_res:
        continue
    od = work / "out" / tool
    od.mkdir(parents=True, exist_ok=True)
    times, cov, false = [], [], 0
    for n in names:
        src, dst = work / "images" / n, od / n
        times.append(run(cmd(src, dst)))
        c, f = score_frame(np.asarray(Image.open(src).convert("RGB")), np.asarray(Image.open(dst).convert("RGB")), ann[n])
        cov += c
        false += f
    img_res[tool] = {"faces": len(cov), "covered": int(sum(cov)), "recall": sum(cov) / len(cov), "false_covers": false,
                     "seconds_per_image_incl_startup": statistics.median(times)}
    print("images", tool, img_res[tool], flush=True)
cache.write_text(json.dumps(img_res, default=float))
results["images"] = img_res

# ---------------------------------------------------------------- video
gt = json.loads((work / "video.json").read_text())
frames_dir = work / "video_frames"
clip = work / "clip.mp4"
if not clip.exists():
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-framerate", "25", "-i", str(frames_dir / "%04d.png"),
                    "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p", str(clip)], check=True)
vtools = {
    "deface": lambda dst: [deface, str(clip), "-o", str(dst), "--replacewith", "solid"],
    "privet_seetaface": lambda dst: [privet, "anonymize", str(clip), str(dst), "--mode", "solid", "-q"],
    "privet_centerface": lambda dst: [privet, "anonymize", str(clip), str(dst), "--mode", "solid", "-q", "--face-model", centerface],
    "privet_centerface_640": lambda dst: [privet, "anonymize", str(clip), str(dst), "--mode", "solid", "-q", "--face-model", centerface, "--detect-size", "640"],
}
orig_frames = [np.asarray(Image.open(frames_dir / f"{t:04d}.png").convert("RGB")) for t in range(len(gt))]
vid_res = {}
# RESCORE_VIDEO=1: keep the previous run's timings and outputs, score them again.
rescore = bool(os.environ.get("RESCORE_VIDEO")) and "video" in prev
for rep in range(1 if rescore else REPEATS):
    for tool, cmd in vtools.items():  # alternate tools within each repeat
        dst = work / "out" / f"{tool}.mp4"
        secs = prev["video"]["tools"][tool]["seconds"] if rescore else run(cmd(dst))
        r = vid_res.setdefault(tool, {"seconds": []})
        r["seconds"] = secs if rescore else r["seconds"] + [secs]
        if rep == 0:
            cap = cv2.VideoCapture(str(dst))
            faces = covered = false = 0
            missed_frames = []
            for t in range(len(gt)):
                ok, bgr = cap.read()
                if not ok:
                    raise SystemExit(f"{tool}: output has only {t} frames")
                c, f = score_frame(orig_frames[t], bgr[:, :, ::-1], gt[t])
                faces += len(c)
                covered += sum(c)
                false += f
                if not all(c):
                    missed_frames.append(t)
            r.update({"faces": faces, "covered": covered, "recall": covered / faces, "false_cover_blobs": false,
                      "frames_with_an_uncovered_face": len(missed_frames), "first_uncovered_frames": missed_frames[:10]})
for tool, r in vid_res.items():
    r["median_seconds"] = statistics.median(r["seconds"])
    r["fps"] = len(gt) / r["median_seconds"]
    print("video", tool, r, flush=True)
results["video"] = {"frames": len(gt), "size": "640x360", "tools": vid_res}


# ---------------------------------------------------------------- background estimation
def sbm(est, gt_img):
    w = np.array([0.2989, 0.5870, 0.1140])
    a, b = est.astype(np.float64) @ w, gt_img.astype(np.float64) @ w
    err = np.abs(a - b)
    ep = err > 20
    cep = ep[1:-1, 1:-1] & ep[:-2, 1:-1] & ep[2:, 1:-1] & ep[1:-1, :-2] & ep[1:-1, 2:]
    mse = (err ** 2).mean()
    return {"AGE": err.mean(), "pEPs": ep.mean(), "pCEPs": cep.sum() / err.size,
            "PSNR": 99.0 if mse == 0 else min(99.0, 10 * np.log10(255 ** 2 / mse))}


bg_res = {}
for scene in sorted(p.name for p in (work / "scenes").iterdir() if p.is_dir()):
    files = sorted((work / "scenes" / scene).glob("*.png"))
    frames = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    gt_img = np.asarray(Image.open(work / "scenes" / f"{scene}_gt.png").convert("RGB"))
    res = {}
    # privet: the example reads the PNG folder and writes the motion-aware and plain medians.
    t_priv = []
    for _ in range(REPEATS):
        out = subprocess.run([str(Path(privet).parent / "examples" / "background"), str(work / "scenes" / scene),
                              str(work / "out" / f"bg_{scene}")], check=True, capture_output=True, text=True)
        t_priv.append(json.loads(out.stdout))
    for key in ["motion_aware", "temporal_median"]:
        est = np.asarray(Image.open(work / "out" / f"bg_{scene}_{key}.png").convert("RGB"))
        res[f"privet_{key}"] = sbm(est, gt_img) | {"seconds": statistics.median(t[key + "_seconds"] for t in t_priv)}
    # numpy median
    ts = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        med = np.median(np.stack(frames), axis=0).astype(np.uint8)
        ts.append(time.perf_counter() - t)
    res["numpy_temporal_median"] = sbm(med, gt_img) | {"seconds": statistics.median(ts)}
    # OpenCV MOG2 (default parameters), its background image after all frames
    ts = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        mog = cv2.createBackgroundSubtractorMOG2()
        for f in frames:
            mog.apply(f[:, :, ::-1])
        bgi = mog.getBackgroundImage()[:, :, ::-1]
        ts.append(time.perf_counter() - t)
    res["opencv_mog2"] = sbm(bgi, gt_img) | {"seconds": statistics.median(ts)}
    bg_res[scene] = res
    for k, v in res.items():
        print("background", scene, k, {m: round(x, 4) for m, x in v.items()}, flush=True)
results["background"] = {"frames_per_scene": 200, "size": "320x240", "scenes": bg_res}
results["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
results_path.write_text(json.dumps(results, indent=1, default=float))
print("wrote", results_path)
