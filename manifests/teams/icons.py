"""Draw the Teams app icons: `color.png` (192x192, full color) and `outline.png` (32x32, white on transparent).

Run `python manifests/teams/icons.py` after changing the design; the PNGs are committed.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).parent
ACCENT = (79, 70, 229, 255)  # the manifest's accentColor, #4F46E5
WHITE = (255, 255, 255, 255)


def _mark(draw: ImageDraw.ImageDraw, size: int, color: tuple[int, int, int, int], width: int) -> None:
    """A speech bubble holding a check mark: a person answers in chat."""
    pad = size * 0.16
    box = (pad, pad, size - pad, size - pad * 1.6)
    draw.rounded_rectangle(box, radius=size * 0.14, outline=color, width=width)
    tail = [(size * 0.34, box[3] - width / 2), (size * 0.30, size - pad * 0.8), (size * 0.50, box[3] - width / 2)]
    draw.polygon(tail, fill=color)
    check = [(size * 0.33, size * 0.44), (size * 0.45, size * 0.56), (size * 0.68, size * 0.32)]
    draw.line(check, fill=color, width=width, joint="curve")


def color_icon() -> Image.Image:
    image = Image.new("RGBA", (192, 192), ACCENT)
    _mark(ImageDraw.Draw(image), 192, WHITE, 12)
    return image


def outline_icon() -> Image.Image:
    image = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    _mark(ImageDraw.Draw(image), 32, WHITE, 2)
    return image


def main() -> None:
    color_icon().save(HERE / "color.png", optimize=True)
    outline_icon().save(HERE / "outline.png", optimize=True)


if __name__ == "__main__":
    main()
