"""Bundle a trained run inside the package: ONNX model, model card, one style thumbnail per style.

    python scripts/bundle_style.py RUN --name classics [--styles-dir ../shared/data/styles] \\
        [--quality out/quality/scores.json] [--train-data-note "..."]

Writes ``restyle/styles/NAME.onnx`` (exported with the dynamo exporter and parity-checked, as ``restyle export``),
``NAME.md`` (the model card: every style image and its source, settings, steps, losses, hardware, training time,
and, with ``--quality``, the ``bench/quality.py`` numbers beside the peer's) and ``STYLE.jpg`` for every style (a
256 px thumbnail of the style image). A multi-style run gives one model whose styles are each named on their own
(``restyle stylize --style udnie``).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from PIL import Image

from restyle.contract import read_metadata
from restyle.export.onnx_export import export_onnx
from restyle.export.parity import ParityReport
from restyle.models.complexity import complexity
from restyle.models.serialization import read_model_record
from restyle.train.config import warm_start_steps

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


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def lineage(record: dict) -> list[dict]:
    """The records this model was fine-tuned from (``--init``), oldest first, as far as their files still exist."""
    chain = [record]
    while len(chain) < 8:
        init = chain[0]["metadata"]["settings"].get("init")
        if not init or not Path(init).is_file():
            break
        chain.insert(0, read_model_record(Path(init)))
    return chain


def stages_table(chain: list[dict]) -> str:
    """One row per training stage, so a fine-tuned model's card shows everything it was trained with."""
    if len(chain) < 2:
        return ""
    rows = []
    for i, rec in enumerate(chain, 1):
        meta, st = rec["metadata"], rec["metadata"]["settings"]
        lw = st.get("style_layer_weights") or [1.0] * len(st["style_layers"])
        layers = ", ".join(f"{layer}×{w:g}" if w != 1 else layer for layer, w in zip(st["style_layers"], lw))
        start = f"stage {i - 1}" if i > 1 else "random weights"
        if st.get("tune_styles"):  # restyle.train.tune_styles: the other styles and every convolution kept
            start += f"; only {', '.join(st['tune_styles'])}'s norms train"
        if st.get("teacher"):  # restyle.train.distill: the teacher's pictures are the targets, no Gram losses
            rows.append(
                f"| {i} | {start}; distillation from `{Path(st['teacher']).stem}` (pixel L1 + relu1_1/relu2_1 "
                f"features, crops scaled by {', '.join(f'{f:g}' for f in st.get('distill_scales', [1]))}) | "
                f"{meta['steps']} × {st['batch_size']} at {st['image_size']} px | – | – | – | – | – | {st['lr']:g} | "
                f"{meta['train_seconds'] / 60:.0f} min |"
            )
            continue
        warm = f" (after {st['identity_steps']} identity steps)" if warm_start_steps(st) else ""
        rows.append(
            f"| {i} | {start} | {meta['steps']} × {st['batch_size']} at {st['image_size']} px{warm} | "
            f"{st['style_weight']:g} | {st['style_size']} px | {layers} | {st.get('palette_weight', 0):g} | "
            f"{st['tv_weight']:g} | {st['lr']:g} | {meta['train_seconds'] / 60:.0f} min |"
        )
    head = (
        "| stage | starts from | steps × batch | style weight | style size | style layers | palette | TV | lr | "
        "time |\n"
    )
    return (
        "\n\nTrained in stages, each starting from the previous one's weights (`--init`):\n\n"
        + head
        + ("|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows))
    )


PHOTOSETS = {
    "heldout": "held-out photos (bench/photo_split.py: never trained on, never used to choose a recipe)",
    "tuning": "tuning photos (training side, where recipes are chosen)",
    "kodak": "Kodak photos",
}


def quality_rows(quality: dict | None, names: list[str]) -> str:
    """The card's quality table: means beside the peer's and the share of photos won, from bench quality's scores.json."""
    if not quality:
        return "Not measured yet: run `make quality` and bundle again with `--quality out/quality/scores.json`."
    where = PHOTOSETS.get(quality.get("photoset", "kodak"), "photos")
    lines = [
        f"`python -m bench quality` on {quality['photos']} {where} at 512 px (lower is better; targets: style and "
        "palette at most the peer's, content at most 1.1x the peer's, on the mean and on at least 2/3 of the photos; "
        "'won': the share of photos where this model meets the target against the peer on that photo):",
        "",
        "| style | style dist (peer) | content dist (peer) | palette dist (peer) | won: style / content / palette |",
        "|---|---|---|---|---|",
    ]
    for n in names:
        q = quality["styles"].get(n)
        if not q:
            lines.append(f"| {n} | – | – | – | – |")
            continue
        r, p = q["restyle"], q.get("peer") or {}
        share = quality.get("shares_won", {}).get(n, {}).get("restyle")
        won = " / ".join(f"{share[k]:.0%}" for k in ("style", "content", "palette")) if share else "–"
        lines.append(
            f"| {n} | {_fmt(r['style'])} ({_fmt(p.get('style'))}) | {_fmt(r['content'])} ({_fmt(p.get('content'))}) | "
            f"{_fmt(r['palette'])} ({_fmt(p.get('palette'))}) | {won} |"
        )
    return "\n".join(lines)


def model_card(
    name: str,
    record: dict,
    sources: dict[str, str],
    onnx_path: Path,
    parity: list[str],
    quality: dict | None,
    data_note: str,
    notes: str,
) -> str:
    meta = record["metadata"]
    s = meta["settings"]
    losses = meta.get("final_losses", {})
    macs = complexity(_network(record)).macs_per_pixel
    chain = lineage(record)
    total_seconds = sum(r["metadata"]["train_seconds"] for r in chain)
    names = list(record["style_names"])
    style_lines = "\n".join(
        f"| `{n}` | `{img['file']}` (sha256 `{img['sha256'][:12]}…`) | {sources.get(img['file'], 'unknown')} |"
        for n, img in zip(names, meta["style_images"])
    )
    layers = s["style_layers"]
    lw = s.get("style_layer_weights") or [1.0] * len(layers)
    layer_text = ", ".join(f"{layer} × {w:g}" for layer, w in zip(layers, lw))
    return f"""# {name}

One `{record["arch"]}` network (~{macs / 1000:.1f}k MACs per pixel) holding {len(names)} style(s) by conditional
instance normalisation (Dumoulin et al. 2017). Each style is named on its own (`restyle stylize --style {names[0]}`,
`"style": "{names[0]}"` in the API) and any mix can be blended (`--style-weights '{names[0]}=0.5,{names[-1]}=0.5'`).

| style | image | source |
|---|---|---|
{style_lines}

## Quality

{quality_rows(quality, names)}

## Training

| | |
|---|---|
| training photos | {data_note}; random resized crops of {s["image_size"]} px, flips; styles mixed inside every batch |
| steps × batch | {meta["steps"]} × {s["batch_size"]}{
        f", after {s['identity_steps']} identity (pixel L1) warm-start steps" if warm_start_steps(s) else ""
    } |
| style size | {s["style_size"]} px (shorter side of the style image when taking Gram targets) |
| losses (balanced, see `restyle.train.losses`) | content {s["content_weight"]} at `{s["content_layer"]}`, style {
        s["style_weight"]
    } over {layer_text}, palette {s.get("palette_weight", 0)} (sliced Wasserstein, RGB), TV {s["tv_weight"]}, \
temporal {s["temporal_weight"]} |
| optimiser | Adam, lr {s["lr"]} ({s.get("lr_schedule", "constant")} to {s.get("lr_min_fraction", 1)}×), seed {
        s["seed"]
    } |
| final losses | content {losses.get("content", 0):.4g}, style {losses.get("style", 0):.4g}, TV {
        losses.get("tv", 0):.4g}, total {losses.get("total", 0):.4g} |
| hardware | {meta["hardware"]} |
| training time | {total_seconds:.0f} s ({total_seconds / 3600:.2f} h{", all stages" if len(chain) > 1 else ""}) |
| ONNX file | `{onnx_path.name}`, {onnx_path.stat().st_size / 1e6:.2f} MB |{stages_table(chain)}

Parity of the ONNX file against PyTorch (from `restyle export`):

```
{chr(10).join(parity)}
```
{notes}
"""


def _network(record: dict):
    from restyle.models.transformer import build_network

    return build_network(record["arch"], len(record["style_names"]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--styles-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/styles")
    p.add_argument("--quality", type=Path, help="scores.json written by bench/quality.py")
    p.add_argument("--data-note", default="`../shared/data/photos`", help="how to describe the training photos")
    p.add_argument("--notes", type=Path, help="markdown appended to the card (what still looks worse, and why)")
    p.add_argument("--skip-export", action="store_true", help="only rewrite the card (the ONNX file exists)")
    args = p.parse_args()
    if not re.fullmatch(r"[a-z0-9][a-z0-9_\-]*", args.name):
        raise SystemExit("name: lowercase letters, digits, _ and - only")
    final = args.run / "final.pt"
    record = read_model_record(final)
    STYLES.mkdir(exist_ok=True)
    onnx_path = STYLES / f"{args.name}.onnx"
    if not args.skip_export:
        export_onnx(final, onnx_path)
    recorded = read_metadata(onnx_path).parity  # the parity check's result is stored inside the file
    parity = ParityReport(recorded["tolerance"], recorded["max_abs_error"]).lines()
    sources = {}
    for img in record["metadata"]["style_images"]:
        sources[img["file"]] = style_source(args.styles_dir / "SOURCES.md", img["file"])
        thumb = Image.open(args.styles_dir / img["file"]).convert("RGB")
        thumb.thumbnail((256, 256))
        thumb.save(STYLES / f"{img['name']}.jpg", quality=88)
    quality = json.loads(args.quality.read_text()) if args.quality else None
    notes = args.notes.read_text() if args.notes else ""
    card = model_card(args.name, record, sources, onnx_path, parity, quality, args.data_note, notes)
    (STYLES / f"{args.name}.md").write_text(card)
    print(f"bundled {args.name}: {onnx_path} ({onnx_path.stat().st_size / 1e6:.2f} MB), styles {record['style_names']}")


if __name__ == "__main__":
    main()
