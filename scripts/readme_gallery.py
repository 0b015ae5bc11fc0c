"""The README gallery: the bundled sample photo (and two more Kodak photos) in every bundled style.

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
    names = registry.bundled_names()
    GALLERY.mkdir(parents=True, exist_ok=True)
    header = "| photo | " + " | ".join(f"`{n}`" for n in names) + " |"
    lines = [header, "|" + "---|" * (len(names) + 1)]
    styles_row = "| *style image* | " + " | ".join(f"![{n}](restyle/styles/{n}.jpg)" for n in names) + " |"
    lines.append(styles_row)
    for photo in PHOTOS:
        image = decode_image(photo)
        stem = photo.stem
        thumb = GALLERY / f"{stem}__original.jpg"
        save_image(registry.get(names[0]).stylize(image, StylizeOptions(strength=0, max_size=384)), thumb, quality=85)
        cells = [f"![{stem}]({thumb.relative_to(ROOT)})"]
        for name in names:
            out = registry.get(name).stylize(image, StylizeOptions(max_size=384))
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
