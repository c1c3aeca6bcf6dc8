"""Writes the small test images committed under crates/privet-vision/tests/data/ from
scikit-image's bundled sample data (run with the benchmark's venv: bench/vision/run.sh makes it).

- astronaut_head.jpg: the head of scikit-image's `astronaut` (Eileen Collins, NASA; public domain),
  cropped; the face box inside the crop is FACE_IN_CROP (OpenCV's Haar frontal face detector on
  the full image gives (177, 66, 95, 95)).
- coffee_bg.jpg: scikit-image's `coffee` (CC0, Rachel Michetti), downscaled.
- brick_bg.jpg: scikit-image's `brick` (CC0, cc0textures.com), grey, downscaled and tinted.
"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

out = Path(sys.argv[1] if len(sys.argv) > 1 else "crates/privet-vision/tests/data")
out.mkdir(parents=True, exist_ok=True)

CROP = (140, 20, 310, 210)  # x0, y0, x1, y1 in astronaut.png
FACE = (177, 66, 177 + 95, 66 + 95)

a = Image.fromarray(data.astronaut())
a.crop(CROP).save(out / "astronaut_head.jpg", quality=90)
print("face in crop:", [FACE[0] - CROP[0], FACE[1] - CROP[1], FACE[2] - CROP[0], FACE[3] - CROP[1]])

c = Image.fromarray(data.coffee())
c.resize((320, 213), Image.LANCZOS).save(out / "coffee_bg.jpg", quality=88)

b = data.brick().astype(np.float32)
rgb = np.stack([b * 0.9, b * 0.75, b * 0.6], axis=-1).clip(0, 255).astype(np.uint8)
Image.fromarray(rgb).resize((320, 240), Image.LANCZOS).save(out / "brick_bg.jpg", quality=88)

# A licence plate in the style of the Russian plates the opencv-data cascade was trained on, drawn
# with DejaVu Sans (assets/DejaVuSans.ttf) onto brick_bg.jpg. The plate is at PLATE.
from PIL import ImageDraw, ImageFont  # noqa: E402

font_path = Path(__file__).resolve().parents[2] / "assets" / "DejaVuSans.ttf"
img = Image.open(out / "brick_bg.jpg").convert("RGB")
d = ImageDraw.Draw(img)
W, H, x, y = 180, int(180 * 0.22), 60, 100
d.rectangle([x, y, x + W, y + H], fill=(235, 235, 235), outline=(10, 10, 10), width=2)
d.text((x + 6, y + 2), "A123BC 77", font=ImageFont.truetype(str(font_path), int(H * 0.8)), fill=(15, 15, 15))
img.save(out / "plate_composite.png")
print("plate:", [x, y, x + W + 1, y + H + 1])

# Reference answers from OpenCV (opencv-python 4.11, CascadeClassifier.detectMultiScale with
# scaleFactor 1.1, minNeighbors 3) for the cascade evaluator's tests.
try:
    import cv2

    hc = "/usr/share/opencv4/haarcascades/"
    plate = cv2.CascadeClassifier(hc + "haarcascade_russian_plate_number.xml")
    face = cv2.CascadeClassifier(hc + "haarcascade_frontalface_default.xml")
    g = np.array(img.convert("L"))
    print("opencv plate:", plate.detectMultiScale(g, 1.1, 3).tolist())
    h = np.array(Image.open(out / "astronaut_head.jpg").convert("L"))
    print("opencv face on astronaut_head:", face.detectMultiScale(h, 1.1, 3).tolist())
except Exception as e:  # opencv or opencv-data missing
    print("no OpenCV reference:", e)
