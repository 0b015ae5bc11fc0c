import torch

from restyle.reference.attribution import GuidedBackprop, Occlusion, Saliency, predicted

from .conftest import BACKGROUND, FACE


def _occlude(x, region):
    z = x.clone()
    z[..., region[0], region[1]] = 0.5
    return z


def test_occluding_the_face_hurts_more_than_the_background(classifier, chelsea):
    cat = predicted(classifier, chelsea)
    p = lambda z: float(classifier.probabilities(z)[0, cat])  # noqa: E731
    base, face, bg = p(chelsea), p(_occlude(chelsea, FACE)), p(_occlude(chelsea, BACKGROUND))
    assert base - face > 2 * max(base - bg, 0.02)


def test_occlusion_map_is_lowest_on_the_face(classifier, chelsea):
    cat = predicted(classifier, chelsea)
    grid = Occlusion(classifier, window=80, stride=24).probability_grid(chelsea, cat)
    r, c = divmod(int(grid.argmin()), grid.shape[1])
    cy, cx = r * 24 + 40, c * 24 + 40  # window centre in pixels
    assert FACE[0].start - 24 <= cy <= FACE[0].stop + 24 and FACE[1].start - 24 <= cx <= FACE[1].stop + 24
    m = Occlusion(classifier, window=80, stride=24).attribute(chelsea, cat)
    assert m.shape == chelsea.shape[-2:]


def test_gradient_mass_is_on_the_cat(classifier, chelsea):
    # Plain gradients are noisy (ratio about 1.3); guided backprop concentrates far more (about 7).
    for method, ratio in ((Saliency, 1.2), (GuidedBackprop, 3.0)):
        a = method(classifier).attribute(chelsea)
        assert a.shape == (224, 224) and (a >= 0).all()
        assert a[FACE].mean() > ratio * a[BACKGROUND].mean(), method.__name__


def test_guided_backprop_differs_from_plain_gradient(classifier, chelsea):
    assert not torch.allclose(GuidedBackprop(classifier).attribute(chelsea), Saliency(classifier).attribute(chelsea))
