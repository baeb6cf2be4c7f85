"""Registered models: shapes on the datasets' image sizes, and the features/head split gradient scores rely on."""

from __future__ import annotations

import pytest
import torch

from datacull.catalog import get_model, list_models


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("channels, size", [(1, (8, 8)), (3, (32, 32))])
def test_every_model_classifies_digits_and_cifar_sized_images(name, channels, size):
    model = get_model(name)(in_channels=channels, image_size=size, num_classes=10)
    images = torch.randn(2, channels, *size)
    features = model.features(images)
    assert features.shape == (2, model.head.in_features)
    torch.testing.assert_close(model(images), model.head(features))
    assert model(images).shape == (2, 10)


def test_the_cnn_stops_pooling_before_a_feature_map_vanishes():
    tiny = get_model("cnn")(in_channels=1, image_size=(8, 8), num_classes=10, width=4, depth=4)
    assert tiny.features(torch.randn(1, 1, 8, 8)).shape == (1, 4 * 2**3)
    pools = sum(isinstance(layer, torch.nn.MaxPool2d) for layer in tiny.modules())
    assert pools == 2  # 8 -> 4 -> 2, then no more
