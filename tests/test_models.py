"""Models: shapes for every input size, LeNet's classic layout, He initialisation."""

import pytest
import torch

from optbench.errors import OptbenchError
from optbench.models import LeNet5, build_model


@pytest.mark.parametrize("name", ["mlp", "lenet", "resnet", "resnet20"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_every_model_fits_every_input_size(name, shape):
    torch.manual_seed(0)
    model = build_model(name, shape, 10)
    logits = model(torch.randn(4, *shape))
    assert logits.shape == (4, 10)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_lenet_has_the_classic_layout_on_28x28():
    model = LeNet5((1, 28, 28), 10)
    widths = [layer.in_features for layer in model.classifier if isinstance(layer, torch.nn.Linear)]
    assert widths == [16 * 5 * 5, 120, 84]
    parameters = sum(p.numel() for p in model.parameters())
    assert parameters == 61706  # LeNet-5 with padding on the first convolution


def test_models_are_he_initialised_and_seeded():
    torch.manual_seed(0)
    first = build_model("mlp", (1, 28, 28), 10)
    torch.manual_seed(0)
    second = build_model("mlp", (1, 28, 28), 10)
    for a, b in zip(first.parameters(), second.parameters(), strict=False):
        assert torch.equal(a, b)
    weight = first[1].weight
    assert weight.std().item() == pytest.approx((2 / 784) ** 0.5, rel=0.05)
    assert torch.count_nonzero(first[1].bias) == 0


def test_resnet_blocks_and_batch_norm():
    model = build_model("resnet20", (3, 32, 32), 10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) == 1 + 3 * 3 * 2  # stem + 3 stages x 3 blocks x 2 convolutions
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_unknown_model_suggests_a_name():
    with pytest.raises(OptbenchError, match="unknown model 'lenett'; did you mean 'lenet'"):
        build_model("lenett", (1, 8, 8), 10)
