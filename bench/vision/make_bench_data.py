"""Benchmark data with exact ground truth, made from scikit-image's bundled photos (public domain
or CC0; see README.md): annotated face composites (images and a video) and static-camera scenes
with real objects moving along paths (for background estimation).

usage: make_bench_data.py OUTDIR
"""
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance
from skimage import data

out = Path(sys.argv[1])
rng = np.random.default_rng(2026)

FACE_CROP = (140, 20, 310, 210)
FACE_BOX = (37, 46, 132, 141)  # in the crop


def head_sprite(scale, flip=False, bright=1.0, angle=0.0):
    """The astronaut's head as RGBA (elliptical alpha) and its face box."""
    h = Image.fromarray(data.astronaut()).crop(FACE_CROP)
    if flip:
        h = h.transpose(Image.FLIP_LEFT_RIGHT)
    h = ImageEnhance.Brightness(h).enhance(bright)
    w, hh = int(h.width * scale), int(h.height * scale)
    h = h.resize((w, hh), Image.LANCZOS)
    yy, xx = np.mgrid[0:hh, 0:w]
    alpha = (((xx + 0.5 - w * 0.5) / (w * 0.47)) ** 2 + ((yy + 0.5 - hh * 0.52) / (hh * 0.5)) ** 2 <= 1.0)
    rgba = np.dstack([np.asarray(h), (alpha * 255).astype(np.uint8)])
    fb = FACE_BOX if not flip else (170 - FACE_BOX[2], FACE_BOX[1], 170 - FACE_BOX[0], FACE_BOX[3])
    sprite = Image.fromarray(rgba, "RGBA")
    box = [v * scale for v in fb]
    if angle:
        sprite = sprite.rotate(angle, resample=Image.BICUBIC, expand=False)
    return sprite, box


def backgrounds(size):
    # Every background is public domain or CC0 (see README.md).
    imgs = [data.coffee(), data.chelsea(), data.rocket(), data.hubble_deep_field(), data.grass(), data.brick()]
    res = []
    for a in imgs:
        if a.ndim == 2:
            a = np.dstack([a * 0.9, a * 0.8, a * 0.65]).clip(0, 255).astype(np.uint8)
        res.append(Image.fromarray(a).convert("RGB").resize(size, Image.LANCZOS))
    return res


def face_images():
    d = out / "images"
    d.mkdir(parents=True, exist_ok=True)
    ann = {}
    bgs = backgrounds((640, 480))
    for i in range(24):
        img = bgs[i % len(bgs)].copy()
        boxes = []
        for _ in range(int(rng.integers(1, 4))):
            scale = float(rng.choice([0.22, 0.3, 0.4, 0.55, 0.8, 1.1]))
            s, box = head_sprite(scale, flip=bool(rng.integers(0, 2)), bright=float(rng.uniform(0.7, 1.2)),
                                 angle=float(rng.uniform(-12, 12)))
            for _try in range(30):
                x = int(rng.integers(0, 640 - s.width))
                y = int(rng.integers(0, 480 - s.height))
                b = [x + box[0], y + box[1], x + box[2], y + box[3]]
                if all(b[2] < o[0] - 20 or b[0] > o[2] + 20 or b[3] < o[1] - 20 or b[1] > o[3] + 20 for o in boxes):
                    img.paste(s, (x, y), s)
                    boxes.append(b)
                    break
        img.save(d / f"img{i:02d}.png")
        ann[f"img{i:02d}.png"] = boxes
    (out / "images.json").write_text(json.dumps(ann))


def face_video():
    """150 frames, 640x360 at 25 fps: two heads crossing the coffee picture."""
    d = out / "video_frames"
    d.mkdir(parents=True, exist_ok=True)
    bg = backgrounds((640, 360))[0]
    a, abox = head_sprite(0.45)
    b, bbox = head_sprite(0.3, flip=True, bright=0.85)
    gt = []
    for t in range(150):
        img = bg.copy()
        boxes = []
        for s, box, (x, y) in [(a, abox, (int(-40 + 4.2 * t), int(60 + 60 * np.sin(t / 20)))),
                               (b, bbox, (int(600 - 3.5 * t), int(220 - 0.6 * t)))]:
            img.paste(s, (x, y), s)
            fb = [x + box[0], y + box[1], x + box[2], y + box[3]]
            # Only faces at least 80% inside the frame count.
            ix = max(0, min(640, fb[2]) - max(0, fb[0])) * max(0, min(360, fb[3]) - max(0, fb[1]))
            if ix >= 0.8 * (fb[2] - fb[0]) * (fb[3] - fb[1]):
                boxes.append(fb)
        img.save(d / f"{t:04d}.png")
        gt.append(boxes)
    (out / "video.json").write_text(json.dumps(gt))


def crop_sprite(img, box, ellipse=True, scale=1.0):
    s = Image.fromarray(img).crop(box)
    s = s.resize((int(s.width * scale), int(s.height * scale)), Image.LANCZOS)
    w, h = s.size
    yy, xx = np.mgrid[0:h, 0:w]
    alpha = np.ones((h, w), bool)
    if ellipse:
        alpha = ((xx + 0.5 - w / 2) / (w / 2)) ** 2 + ((yy + 0.5 - h / 2) / (h / 2)) ** 2 <= 1
    return Image.fromarray(np.dstack([np.asarray(s), alpha * 255]).astype(np.uint8), "RGBA")


def scenes():
    """Static-camera scenes, 320x240, 200 frames each, with the true background."""
    head, _ = head_sprite(0.45)
    cat = crop_sprite(data.chelsea(), (120, 20, 330, 230), scale=0.4)
    rocket = crop_sprite(data.rocket(), (180, 30, 330, 400), ellipse=False, scale=0.25)
    cup = crop_sprite(data.coffee(), (180, 40, 480, 320), scale=0.3)
    sprites = [head, cat, rocket, cup]
    bgs = backgrounds((320, 240))
    specs = {
        # A queue of objects crossing one band all the time: the band's background is visible
        # about 30-40% of the time (a plain median fails there).
        "busy_band": (bgs[4], [(i % 4, "loop", i * 22) for i in range(6)]),
        # Objects that stop for a while (60 of 200 frames) and then go.
        "dwellers": (bgs[0], [(0, "dwell", 0), (1, "dwell", 70), (3, "cross", 0)]),
        # Mixed traffic on a textured wall.
        "mixed": (bgs[5], [(2, "loop", 0), (1, "loop", 40), (0, "cross", 10), (3, "dwell", 100)]),
    }
    for name, (bg, objs) in specs.items():
        d = out / "scenes" / name
        d.mkdir(parents=True, exist_ok=True)
        bg.save(out / "scenes" / f"{name}_gt.png")
        for t in range(200):
            img = bg.copy()
            for k, (si, kind, phase) in enumerate(objs):
                s = sprites[si]
                if kind == "loop":  # left to right along y = 90 (+ small wiggle), period 130 frames
                    x = int(-s.width + ((t + phase) % 130) / 130 * (320 + s.width))
                    y = 120 - s.height // 2 + int(8 * np.sin((t + phase) / 9))
                elif kind == "cross":  # diagonal once
                    u = (t + phase) / 200
                    x, y = int(-s.width + u * (320 + s.width)), int(240 - u * (240 + s.height))
                else:  # dwell: walk in for 30 frames, stay 60, walk out for 30
                    u = t - phase
                    if u < 0 or u > 120:
                        continue
                    px = 60 + 90 * k % 180
                    y = 30 + 50 * (k % 3)
                    x = int(-s.width + (px + s.width) * min(u, 30) / 30) if u <= 90 else int(px + (u - 90) / 30 * (320 - px))
                img.paste(s, (x, y), s)
            img.save(d / f"{t:04d}.png")


face_images()
face_video()
scenes()
print("wrote", out)
