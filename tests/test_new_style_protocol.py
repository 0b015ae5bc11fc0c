"""The pure parts of ``bench new_style --protocol``: the leave-one-out base and the fixed split of the paintings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from bench.new_style_protocol import BUNDLED, HELDOUT, KIND, TUNING, leave_one_out_base, split_of, without_style
from restyle.models.serialization import save_model
from restyle.train.add_style import load_base
from tests.networks import distinct_styles

REPO = Path(__file__).resolve().parents[1]


def three_styles() -> torch.nn.Module:
    return distinct_styles("fast", 3).eval()


@pytest.mark.parametrize("left_out", ["a", "b", "c"])
def test_without_style_keeps_the_other_styles_outputs_and_names(left_out: str) -> None:
    net, names = three_styles(), ["a", "b", "c"]
    smaller, rest = without_style(net, names, left_out)
    assert rest == [n for n in names if n != left_out] and smaller.num_styles == 2
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        for i, name in enumerate(rest):
            assert torch.equal(smaller(x, i), net(x, names.index(name))), name
    # nothing else changed: every convolution is the base's
    for key, value in smaller.state_dict().items():
        if value.shape == net.state_dict()[key].shape:
            assert torch.equal(value, net.state_dict()[key]), key


def test_leave_one_out_base_is_a_base_with_the_remaining_names(tmp_path: Path) -> None:
    base = save_model(three_styles(), tmp_path / "base" / "final.pt", ["a", "b", "c"], {"note": "test base"})
    path = leave_one_out_base(str(base), "b", tmp_path / "without-b")
    net, names = load_base(str(path))
    assert names == ["a", "c"] and net.num_styles == 2


def test_split_is_disjoint_and_covers_every_painting() -> None:
    assert not set(TUNING) & set(HELDOUT)
    assert len(set(TUNING)) == len(TUNING) and len(set(HELDOUT)) == len(HELDOUT)
    new = {p.stem for p in (REPO / "data" / "paintings").glob("*.jpg")}
    bundled = {p.stem for p in (REPO / "restyle" / "styles").glob("*.jpg")}
    assert bundled == set(BUNDLED)
    assert set(TUNING) | set(HELDOUT) == new | bundled
    assert {split_of(n) for n in TUNING} == {"tuning"} and {split_of(n) for n in HELDOUT} == {"heldout"}


def test_kinds_cover_every_painting_and_agree_with_the_sources() -> None:
    assert set(KIND) == set(TUNING) | set(HELDOUT)
    sources = (REPO / "data" / "paintings" / "SOURCES.md").read_text()
    listed = dict(re.findall(r"^\| (\S+)\.jpg \|[^|]*\|[^|]*\| ([^|]+?) \|", sources, re.M))
    assert listed and all(KIND[name] == kind for name, kind in listed.items()), listed


def record(painting: str, style: float, palette: float, content: float, full: tuple | None = None) -> dict:
    """One painting's protocol result at marks 1 and 2 (the same scores at both), beside a peer at 0.5/1.0/0.5."""
    scores = [[style, content, palette]] * 2
    return {
        "painting": painting, "kind": KIND[painting], "split": split_of(painting), "base_saw_it": full is not None,
        "minutes": [1.0, 2.0], "marks": [{"minute": m, "step": 60 * m, "scores": scores} for m in (1, 2)],
        "peer": [[0.5, 1.0, 0.5]] * 2, "full_run": [list(full)] * 2 if full else None,
    }  # fmt: skip


def test_recipes_table_counts_wins_by_the_protocol_rule_and_names_the_recipe_by_its_differences() -> None:
    from bench.new_style_recipes import describe, summary_rows

    defaults = {"steps": 260, "lr": 0.005}
    recipe = {"id": "abc", "training": {"steps": 130, "lr": 0.005}}
    records = [
        record("udnie", 0.45, 0.4, 1.05, full=(0.44, 1.0, 0.35)),  # beats; style within 10 %, palette 1.14x: not
        record("the_scream", 0.51, 0.4, 1.0),  # style above the peer's: loses
        record("kandinsky_composition_vii_1913", 0.4, 0.4, 1.11),  # content over 1.1x the peer's: loses
        record("seurat_grande_jatte_1884", 0.4, 0.4, 1.0),  # held out: its own row
    ]
    rows = summary_rows(recipe, records, defaults)
    assert describe(recipe, defaults) == "steps=130" and describe({"training": defaults}, defaults) == "defaults"
    assert describe({"training": {"steps": 260}}, defaults) == "no lr"  # a value added to the defaults later
    tuning = [r for r in rows if r[2] == "tuning"]
    assert [r[4] for r in tuning] == ["1 (60)", "2 (120)"]
    assert (
        tuning[1][3] == "3 (udnie, the_scream, kandinsky_composition)"
        and tuning[1][5] == "1 of 3"
        and tuning[1][9] == "0 of 1"
    )
    assert tuning[1][6] == f"{(0.9 + 1.02 + 0.8) / 3:.3f}"  # mean style over the peer's
    heldout = [r for r in rows if r[2] == "heldout"]
    assert len(heldout) == 2 and heldout[0][5] == "1 of 1" and heldout[0][9] == "-"


def test_shortcut_gives_the_same_answer_only_with_the_same_verdicts_and_distances_within_five_percent() -> None:
    from bench.new_style_shortcut import comparison_rows, same_answer

    never_saw = record("starry_night", 0.45, 0.40, 1.00)  # beats the peer (0.5 / 1.0 / 0.5)
    assert same_answer(record("starry_night", 0.46, 0.41, 1.02), never_saw) == (True, [])
    leak = record("starry_night", 0.40, 0.40, 1.00)  # 11 % better style: the flattering leak
    same, reasons = same_answer(leak, never_saw)
    assert not same and reasons == ["style 0.89x at 1 min", "style 0.89x at 2 min"]
    flip = record("starry_night", 0.46, 0.40, 1.00)
    same, reasons = same_answer(flip, record("starry_night", 0.44, 0.51, 1.00))  # only the shortcut beats the peer
    assert not same and reasons[0] == "at 1 min only the shortcut beats the peer"
    rows = comparison_rows(leak, never_saw)
    assert [r[1] for r in rows] == ["1", "2"] and rows[0][3] == "0.400 / 0.450 (0.89x)" and rows[0][6] == "yes / yes"


def test_the_pull_limit_comes_from_the_tuning_paintings_alone() -> None:
    from bench.new_style_pull import limit_from_tuning

    found = {"udnie": 9.0, "the_scream": 24.0, "durer_young_hare_1502": 144.0, "shipwreck": 35.0}
    assert limit_from_tuning(found, 4.0) == 96.0  # the held-out hare and shipwreck pull harder: not counted


def test_compare_shows_one_row_per_painting_both_recipes_have(tmp_path: Path) -> None:
    import numpy as np

    from bench.new_style_compare import main as compare
    from restyle.imaging import decode_image, save_image

    def results(recipe: str, paintings: list[str], shade: float) -> None:
        (tmp_path / recipe).mkdir()
        (tmp_path / recipe / "recipe.json").write_text("{}")
        for name in paintings:
            tiles = tmp_path / recipe / f"{name}__1-2min__6photos"
            tiles.mkdir()
            for tile in ("painting", "photo", "2min", "peer"):
                save_image(np.full((32, 48, 3), shade, np.float32), tiles / f"{tile}.jpg")

    results("old", ["udnie", "the_scream"], 0.2)
    results("new", ["udnie", "the_scream", "shipwreck"], 0.8)
    target = tmp_path / "new" / "new_style_recipe_compare.jpg"
    assert compare(["--compare", "old,new", "--out", str(tmp_path)]) == 0
    both = decode_image(target)
    assert compare(["--compare", "old,new", "--out", str(tmp_path), "--paintings", "udnie"]) == 0
    one = decode_image(target)
    row = both.shape[0] - one.shape[0]  # shipwreck (new only) is left out: two rows against one
    assert row > 0 and one.shape[0] - row < row and both.shape[1] == one.shape[1]
    with pytest.raises(SystemExit, match="shipwreck has no 2min tile in both"):
        compare(["--compare", "old,new", "--out", str(tmp_path), "--paintings", "shipwreck"])
    with pytest.raises(SystemExit, match="no protocol results for recipe gone"):
        compare(["--compare", "old,gone", "--out", str(tmp_path)])


def test_tone_structure_sees_a_photo_faded_into_paper_not_its_recolouring_or_strokes() -> None:
    import numpy as np
    from skimage import data

    from bench.new_style_tone import tone_structure

    photo = data.astronaut().astype(np.float32) / 255
    grey = photo @ np.array([0.299, 0.587, 0.114], np.float32)
    sepia = np.clip(grey[..., None] * np.array([1.1, 0.95, 0.75], np.float32), 0, 1)  # recoloured, tones kept
    strokes = np.clip(photo + np.random.default_rng(0).normal(0, 0.1, photo.shape).astype(np.float32), 0, 1)
    faded = 0.85 + 0.15 * photo  # the photo fading into pale paper
    assert tone_structure(photo, photo) == pytest.approx(1.0)
    assert tone_structure(sepia, photo) > 0.9 and tone_structure(strokes, photo) > 0.9
    assert tone_structure(faded, photo) < 0.6
