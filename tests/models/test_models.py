"""Registered models: shapes on the datasets' image sizes, and the final linear layer gradient scores rely on."""

from __future__ import annotations

import pytest
import torch

from datacull.catalog import get_model, list_models
from datacull.errors import InputError

from ..helpers import embedding_and_logits

#: What the models that build someone else's module need besides the data set's shape.
EXTERNAL = {
    "custom": {"_target_": "tests.custom_models.TinyNet"},
    "torchvision": {"arch": "mobilenet_v3_small"},
    "timm": {"arch": "test_resnet"},
}


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("channels, size", [(1, (8, 8)), (3, (32, 32))])
def test_every_model_classifies_digits_and_cifar_sized_images(name, channels, size):
    if name == "timm":
        pytest.importorskip("timm")
    kwargs = EXTERNAL.get(name, {})
    if name == "torchvision" and channels != 3:
        with pytest.raises(InputError, match="model=torchvision takes 3-channel images"):
            get_model(name)(in_channels=channels, image_size=size, num_classes=10, **kwargs)
        return
    model = get_model(name)(in_channels=channels, image_size=size, num_classes=10, **kwargs)
    images = torch.randn(2, channels, *size)
    head, embedding, logits = embedding_and_logits(model, images)
    assert logits.shape == (2, 10) and embedding.shape == (2, head.in_features)
    torch.testing.assert_close(head(embedding), logits)
    if name not in EXTERNAL:  # the built-ins split as features -> head
        torch.testing.assert_close(model.features(images), embedding)


def test_the_cnn_stops_pooling_before_a_feature_map_vanishes():
    tiny = get_model("cnn")(in_channels=1, image_size=(8, 8), num_classes=10, width=4, depth=4)
    assert tiny.features(torch.randn(1, 1, 8, 8)).shape == (1, 4 * 2**3)
    pools = sum(isinstance(layer, torch.nn.MaxPool2d) for layer in tiny.modules())
    assert pools == 2  # 8 -> 4 -> 2, then no more
