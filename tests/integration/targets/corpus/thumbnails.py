"""Makes thumbnails of photos with Pillow: decode the JPEG, resize with Lanczos, encode.

The photos are generated once and kept as JPEG bytes in memory. The time is CPU in
libjpeg and Pillow's resampling code: image preprocessing, the host side of a data
pipeline, not model compute (no model runs, no BLAS): host bound.
"""
import io
import random

from PIL import Image, ImageDraw, ImageFilter

from _timing import Clock, parse_args


def make_photo(rng, size=(1280, 960)):
    image = Image.new("RGB", size, (rng.randrange(256), 120, 80))
    draw = ImageDraw.Draw(image)
    for _ in range(200):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        draw.ellipse((x, y, x + rng.randrange(20, 200), y + rng.randrange(20, 200)),
                     fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    image = image.filter(ImageFilter.GaussianBlur(2))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def thumbnail(data):
    with Image.open(io.BytesIO(data)) as image:
        small = image.convert("RGB").resize((320, 240), Image.LANCZOS)
    out = io.BytesIO()
    small.save(out, "JPEG", quality=85)
    return out.getvalue()


def main():
    args = parse_args(__doc__)
    rng = random.Random(12)
    photos = [make_photo(rng) for _ in range(4)]
    clock = Clock()
    done = 0
    while clock.elapsed() < args.duration:
        with clock("host"):
            thumb = thumbnail(photos[done % len(photos)])
        done += 1
    clock.write(args.truth, expect="host", thumbnails=done, last_bytes=len(thumb))


if __name__ == "__main__":
    main()
