import pytest
import torch

from restyle.errors import UserError
from restyle.models.classifier import class_index, imagenet_categories

from .conftest import photo

CATS = {"tabby", "tiger cat", "Egyptian cat"}


def test_categories_and_lookup():
    assert len(imagenet_categories()) == 1000
    assert class_index("Egyptian Cat") == 285
    assert class_index("school_bus") == class_index("school bus")
    assert class_index("7") == 7
    with pytest.raises(UserError, match="did you mean"):
        class_index("cat")
    with pytest.raises(UserError):
        class_index("not a class at all")


def test_chelsea_is_a_cat_and_coffee_is_espresso(classifier, chelsea):
    with torch.no_grad():
        assert classifier.name(int(classifier(chelsea).argmax())) in CATS
        assert classifier.name(int(classifier(photo("coffee")).argmax())) in {"espresso", "cup", "coffee mug"}


def test_features_are_penultimate(classifier, chelsea):
    with torch.no_grad():
        f = classifier.features(chelsea)
        assert f.shape == (1, 1280)
        logits = classifier.net.classifier(f)
        assert torch.allclose(logits, classifier(chelsea), atol=1e-4)
