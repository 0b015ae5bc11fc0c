import pytest
import torch

from restyle.errors import UserError
from restyle.models import FastStyleNet, TransformerNet, build_network, complexity


@pytest.mark.parametrize("arch", ["johnson", "fast", "lite"])
@pytest.mark.parametrize("hw", [(64, 64), (40, 72)])
def test_shape_and_range(arch: str, hw: tuple[int, int]) -> None:
    net = build_network(arch)
    x = torch.rand(2, 3, *hw)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_fast_is_at_most_an_eighth_of_johnson() -> None:
    johnson = complexity(TransformerNet())
    fast = complexity(FastStyleNet())
    assert 150_000 < johnson.macs_per_pixel < 160_000  # the paper's network: ~154k MACs/pixel
    assert fast.macs_per_pixel * 8 <= johnson.macs_per_pixel
    assert fast.parameters < johnson.parameters


def test_conditional_instance_norm_selects_and_blends() -> None:
    torch.manual_seed(0)
    net = build_network("fast", num_styles=3)
    # Give every style its own affine parameters so the styles differ.
    for m in net.modules():
        if hasattr(m, "weight") and m.weight is not None and m.weight.dim() == 2 and m.weight.shape[0] == 3:
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        y0 = net(x, 0)
        y1 = net(x, 1)
        assert torch.allclose(net(x, torch.tensor([1.0, 0.0, 0.0])), y0, atol=1e-6)
        blend = net(x, torch.tensor([0.5, 0.5, 0.0]))
    assert not torch.allclose(y0, y1, atol=1e-3)
    assert not torch.allclose(blend, y0, atol=1e-3) and not torch.allclose(blend, y1, atol=1e-3)
    with pytest.raises(ValueError):
        net(x, 3)


def test_unknown_architecture_is_a_user_error() -> None:
    with pytest.raises(UserError, match="unknown architecture"):
        build_network("resnet")


@pytest.mark.parametrize("arch", ["lite", "lite8-64x3z"])
@pytest.mark.parametrize("hw", [(64, 64), (40, 72)])
def test_lite_networks_keep_the_contract(arch: str, hw: tuple[int, int]) -> None:
    net = build_network(arch, 2)
    x = torch.rand(1, 3, *hw)
    with torch.no_grad():
        y = net(x, 1)
    assert y.shape == x.shape and float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert net.arch == arch


def test_lite_is_under_half_of_fast_and_pads_inside_its_convolutions() -> None:
    from restyle.models.layers import ConvNormAct

    lite, fast = complexity(build_network("lite")), complexity(FastStyleNet())
    assert lite.macs_per_pixel * 2 < fast.macs_per_pixel
    net = build_network("lite")
    body = [m for m in (*net.down, *net.res) for m in m.modules() if isinstance(m, ConvNormAct)]
    assert body and all(isinstance(m.pad, torch.nn.Identity) and m.conv.padding == (1, 1) for m in body)


def test_pad_mode_is_validated() -> None:
    from restyle.models.layers import ConvNormAct

    with pytest.raises(ValueError, match="pad must be"):
        ConvNormAct(3, 8, 3, pad="circular")
