import pytest
import torch

from restyle.errors import UserError
from restyle.reference import gatys
from restyle.reference.inversion import FeatureInversion
from restyle.reference.losses import gram_matrix, psnr, transfer_luminance
from restyle.runtime.processing import rgb_to_ycc

from .conftest import photo


def test_gram_is_normalized_by_chw():
    f = torch.ones(1, 4, 3, 5)
    assert torch.allclose(gram_matrix(f), torch.full((1, 4, 4), 15 / 60))


@pytest.mark.slow
def test_gatys_lowers_its_loss_by_90_percent():
    torch.manual_seed(0)
    cfg = gatys.GatysConfig(size=64, steps=40, style_weight=1e3)
    r = gatys.StyleTransfer(cfg).generate(photo("chelsea", None), photo("immunohistochemistry", None), progress=False)
    assert r.image.shape[-1] == 64 and r.reduction() > 0.9, r.history[-1]


@pytest.mark.slow
def test_texture_synthesis_lowers_its_loss_by_90_percent():
    # 32x32 and 30 L-BFGS steps reach about 94%.
    texture = gatys.TextureSynthesis(gatys.TextureConfig(size=(32, 32), scale_steps=(30,)))
    r = texture.generate(target=photo("immunohistochemistry", None), progress=False)
    assert r.reduction() > 0.9


@pytest.mark.slow
def test_inversion_from_relu2_2_reconstructs_the_photo():
    x = photo("chelsea", 48)
    r = FeatureInversion("relu2_2", steps=40).generate(x, progress=False)
    assert psnr(r.image, x) > 20.0


def test_preserve_color_keeps_content_chroma():
    c, s = photo("chelsea", 32), photo("coffee", 32)
    out = transfer_luminance(s, c)
    ycc = lambda t: torch.from_numpy(rgb_to_ycc(t[0].permute(1, 2, 0).numpy()))  # noqa: E731
    # Where no channel had to be clipped, chroma is the content's and luminance the stylization's.
    unclipped = ((out > 1e-4) & (out < 1 - 1e-4)).all(1)[0]
    assert unclipped.float().mean() > 0.5
    assert torch.allclose(ycc(out)[..., 1:][unclipped], ycc(c)[..., 1:][unclipped], atol=1e-4)
    assert torch.allclose(ycc(out)[..., 0][unclipped], ycc(s)[..., 0][unclipped], atol=1e-4)
    # And it is not the identity: the content's own luminance is gone.
    assert not torch.allclose(ycc(out)[..., 0], ycc(c)[..., 0], atol=0.05)


def test_bad_settings_are_user_errors():
    with pytest.raises(UserError):
        gatys.GatysConfig(size=64, scales=5).validate()
    with pytest.raises(UserError):
        FeatureInversion("relu9_9", steps=1)
    with pytest.raises(UserError):
        gatys.TextureConfig(size=(32, 32), scale_steps=(4, 4, 4)).validate()  # 8 px at the coarsest scale
    with pytest.raises(UserError):
        gatys.style_targets(gatys.vgg19(), [photo("coffee", 32)], [0.5, 0.5], 32)


def test_the_reference_suite_shares_one_vgg_cache():
    from restyle.reference.features import vgg19_features, vgg_to

    assert gatys.vgg19() is gatys.vgg19() is vgg19_features((*gatys.STYLE_LAYERS, gatys.CONTENT_LAYER))
    assert vgg_to("relu2_2") is vgg19_features(("relu2_2",))  # what inversion and the figures use


@pytest.mark.parametrize(
    ("content", "style"),
    [((20, 64), (64, 64)), ((64, 64), (64, 12))],
    ids=["elongated-content", "elongated-style"],
)
def test_an_image_too_small_for_vgg_is_refused_before_any_step(content, style):
    """A 20x64 photo at size 64 over 2 scales is 10x32 at the coarsest one: relu5_1 would pool it to nothing."""
    steps: list[int] = []
    method = gatys.StyleTransfer(gatys.GatysConfig(size=64, steps=1, scales=2))
    with pytest.raises(UserError, match="at least 16 px on each side"):
        method.generate(
            torch.rand(1, 3, *content), torch.rand(1, 3, *style), progress=False, callback=lambda *a: steps.append(1)
        )
    assert steps == []
    # the same call with a square photo and style runs
    method.generate(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64), progress=False)
