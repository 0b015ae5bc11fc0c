"""How much work each gallery figure gets: typed profiles, so tests and the published gallery never share numbers.

``PROFILES["publication"]`` is what ``make gallery`` renders for ``docs/reference.md``, sized to finish in about 20
minutes on this project's 2-core CPU when it is quiet (two torch threads). The estimate comes from step times
measured there: 4.2 s per Gatys L-BFGS step at 512x341, 1.0 s at 256x171, 1.6 s per texture step at 256x256, 0.8 s
per relu5_1 inversion step at 224x149 (shallower layers cost less, in proportion to their share of VGG19's work),
0.74 s per class-visualization step for six classes at 224 px. That gives Gatys about 7 minutes, the two textures
5, the five inversions 3.5, the class visualization 2.3, and the other eleven figures about 3;
``PROFILES["preview"]`` is the same gallery at a fraction of the cost (to check
that every figure renders, and roughly how); ``PROFILES["test"]`` is the
smallest budget at which the methods still do what the tests assert. Each
figure's caption prints the budget it was rendered with, taken from here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from restyle.reference.featurevis import FeatureVisConfig

# The classes of the class-visualization and fooling figures: animals, an object, a food; each has a clear shape.
CLASSES = ("goldfish", "flamingo", "school bus", "strawberry", "monarch", "pineapple")
INVERSION_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass(frozen=True)
class GatysBudget:
    size: int  # long side of the final scale, px
    scale_steps: tuple[int, ...]  # L-BFGS steps per scale, coarse to fine (each scale doubles the size)

    @property
    def scales(self) -> int:
        return len(self.scale_steps)

    def sizes(self) -> list[int]:
        return [self.size >> (self.scales - 1 - i) for i in range(self.scales)]

    def describe(self) -> str:
        return ", ".join(f"{s} px x {n}" for s, n in zip(self.sizes(), self.scale_steps)) + " L-BFGS steps"


@dataclass(frozen=True)
class GalleryBudget:
    """Sizes and step counts of every figure that optimizes something; the rest cost seconds at any profile."""

    name: str
    gatys: GatysBudget
    texture: GatysBudget  # square textures, coarse to fine
    inversion_size: int
    inversion_steps: int
    classvis: FeatureVisConfig
    classes: tuple[str, ...]
    fooling_steps: int
    deepdream_size: int
    deepdream_steps: int
    occlusion_stride: int
    inversion_layers: tuple[str, ...] = INVERSION_LAYERS
    texture_styles: tuple[str, ...] = ("starry_night", "great_wave")

    def as_dict(self) -> dict:
        return asdict(self)


PUBLICATION = GalleryBudget(
    name="publication",
    gatys=GatysBudget(512, (250, 120, 50)),
    texture=GatysBudget(256, (150, 50)),
    inversion_size=224,
    inversion_steps=120,
    classvis=FeatureVisConfig(steps=288, octaves=(112, 160, 224)),
    classes=CLASSES,
    fooling_steps=100,
    deepdream_size=384,
    deepdream_steps=10,
    occlusion_stride=8,
)

PREVIEW = GalleryBudget(
    name="preview",
    gatys=GatysBudget(192, (100, 40)),
    texture=GatysBudget(128, (100, 40)),
    inversion_size=96,
    inversion_steps=60,
    classvis=FeatureVisConfig(steps=128, octaves=(64, 96, 128)),
    classes=CLASSES[:4],
    fooling_steps=40,
    deepdream_size=192,
    deepdream_steps=4,
    occlusion_stride=32,
)

TEST = GalleryBudget(
    name="test",
    gatys=GatysBudget(48, (8, 4)),
    texture=GatysBudget(32, (10,)),
    inversion_size=32,
    inversion_steps=5,
    classvis=FeatureVisConfig(steps=40, octaves=(64,)),
    classes=CLASSES[:2],
    fooling_steps=10,
    deepdream_size=48,
    deepdream_steps=1,
    occlusion_stride=112,
    inversion_layers=("relu1_1", "relu3_1"),
)

PROFILES: dict[str, GalleryBudget] = {b.name: b for b in (TEST, PREVIEW, PUBLICATION)}
