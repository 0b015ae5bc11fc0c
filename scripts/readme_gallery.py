"""The README gallery: every bundled style (one row each) on the bundled sample photo and two more Kodak photos.

    python scripts/readme_gallery.py

Writes ``docs/gallery/<photo>__<style>.jpg`` and rewrites the table between the gallery markers in README.md,
using the same runtime (``Registry`` -> ``Stylizer.stylize``) as the CLI and the API.
"""

from __future__ import annotations

import re
from pathlib import Path

from restyle.imaging import decode_image, save_image
from restyle.runtime import Registry, StylizeOptions

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "docs" / "gallery"
PHOTOS = [ROOT / "restyle" / "assets" / "sample.jpg", *sorted((ROOT / "docs" / "gallery" / "inputs").glob("*.jpg"))]
START, END = "<!-- gallery:start -->", "<!-- gallery:end -->"


def main() -> None:
    registry = Registry()
    names = [n for n in registry.style_names() if registry.info(n).source == "bundled"]
    GALLERY.mkdir(parents=True, exist_ok=True)
    for old in GALLERY.glob("*__*.jpg"):
        old.unlink()  # styles that are no longer bundled leave no stale pictures behind
    images = {photo.stem: decode_image(photo) for photo in PHOTOS}
    header = "| style | style image | " + " | ".join(f"`{stem}`" for stem in images) + " |"
    lines = [header, "|" + "---|" * (len(images) + 2)]
    cells = ["*photo*", ""]
    first = registry.get(names[0])
    for stem, image in images.items():
        thumb = save_image(
            first.stylize(image, StylizeOptions(strength=0, max_size=384)),
            GALLERY / f"{stem}__original.jpg",
            quality=85,
        )
        cells.append(f"![{stem}]({thumb.relative_to(ROOT)})")
    lines.append("| " + " | ".join(cells) + " |")
    for name in names:
        stylizer, inner = registry.resolve_style(name)
        cells = [f"`{name}`", f"![{name}](restyle/styles/{name}.jpg)"]
        for stem, image in images.items():
            out = stylizer.stylize(image, StylizeOptions(max_size=384, style_weights=inner))
            path = save_image(out, GALLERY / f"{stem}__{name}.jpg", quality=85)
            cells.append(f"![{stem} in {name}]({path.relative_to(ROOT)})")
        lines.append("| " + " | ".join(cells) + " |")
    readme = ROOT / "README.md"
    text = readme.read_text()
    table = "\n".join(lines)
    if START in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), f"{START}\n{table}\n{END}", text, flags=re.S)
    else:
        text += f"\n## Gallery\n\n{START}\n{table}\n{END}\n"
    readme.write_text(text)
    print(f"gallery: {len(PHOTOS)} photo(s) x {len(names)} style(s) in {GALLERY}")


if __name__ == "__main__":
    main()
