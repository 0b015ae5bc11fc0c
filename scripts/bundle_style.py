"""Bundle a trained run as a named style inside the package: ONNX model, model card, style thumbnail.

    python scripts/bundle_style.py RUN --name starry_night [--styles-dir ../shared/data/styles]

Writes ``restyle/styles/NAME.onnx`` (exported and parity-checked by ``restyle export``), ``NAME.md`` (the model
card: style image and its source, settings, steps, final losses, hardware, training time) and ``NAME.jpg`` (a
256 px thumbnail of the style image, served as the preview).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from PIL import Image

from restyle.export.onnx_export import export_onnx
from restyle.models.serialization import read_model_record

STYLES = Path(__file__).resolve().parents[1] / "restyle" / "styles"


def style_source(sources_md: Path, file_name: str) -> str:
    """The SOURCES.md table row for this style image, as 'work, artist, year (taken from ...)'."""
    if not sources_md.is_file():
        return "unknown"
    for line in sources_md.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == file_name and len(cells) >= 4:
            return f"*{cells[1]}*, {cells[2]}; image taken from {cells[3]}"
    return "unknown"


def model_card(name: str, record: dict, source: str, onnx_path: Path, parity: list[str]) -> str:
    meta = record["metadata"]
    s = meta["settings"]
    losses = meta.get("final_losses", {})
    hours = meta["train_seconds"] / 3600
    return f"""# {name}

| | |
|---|---|
| architecture | `{record["arch"]}` ({"~14.7k" if record["arch"] == "fast" else "~154k"} MACs per pixel) |
| style image | `{meta["style_images"][0]["file"]}` (sha256 `{meta["style_images"][0]["sha256"][:16]}…`) |
| source | {source} |
| training photos | `{s["data"]}`, random resized crops of {s["image_size"]} px, flips |
| steps × batch | {meta["steps"]} × {s["batch_size"]}{
        f" (fine-tuned from `{Path(s['init']).parent.name}/{Path(s['init']).name}`; its steps come on top)"
        if s.get("init")
        else ""
    } |
| style size | {s["style_size"]} px (shorter side) |
| weights | content {s["content_weight"]} at `{s["content_layer"]}`, style {s["style_weight"]} at `{
        ",".join(s["style_layers"])
    }`, TV {s["tv_weight"]}, temporal {s["temporal_weight"]} |
| optimiser | Adam, lr {s["lr"]}, seed {s["seed"]} |
| final losses | content {losses.get("content", 0):.4g}, style {losses.get("style", 0):.4g}, TV {
        losses.get("tv", 0):.4g}, total {losses.get("total", 0):.4g} |
| hardware | {meta["hardware"]} |
| training time | {meta["train_seconds"]:.0f} s ({hours:.2f} h) |
| ONNX file | `{onnx_path.name}`, {onnx_path.stat().st_size / 1e6:.2f} MB |

Parity of the ONNX file against PyTorch (from `restyle export`):

```
{chr(10).join(parity)}
```

{
        "Trained on a 2-core CPU because no GPU was available in that session: far fewer steps than the 40k of "
        "Johnson et al., so brush strokes are coarser and less faithful than a GPU-trained model's. "
        "Retrain on a GPU (`restyle train ... --steps 20000 --image-size 256`) to improve it."
        if "CPU" in meta["hardware"]
        else ""
    }
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--styles-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/styles")
    args = p.parse_args()
    if not re.fullmatch(r"[a-z0-9][a-z0-9_\-]*", args.name):
        raise SystemExit("name: lowercase letters, digits, _ and - only")
    final = args.run / "final.pt"
    record = read_model_record(final)
    STYLES.mkdir(exist_ok=True)
    onnx_path = STYLES / f"{args.name}.onnx"
    result = export_onnx(final, onnx_path)
    parity = result.parity.lines()
    image_file = record["metadata"]["style_images"][0]["file"]
    source = style_source(args.styles_dir / "SOURCES.md", image_file)
    (STYLES / f"{args.name}.md").write_text(model_card(args.name, record, source, onnx_path, parity))
    style_img = Image.open(args.styles_dir / image_file).convert("RGB")
    style_img.thumbnail((256, 256))
    style_img.save(STYLES / f"{args.name}.jpg", quality=88)
    print(f"bundled {args.name}: {onnx_path} ({onnx_path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
