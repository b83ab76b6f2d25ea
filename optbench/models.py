"""The few models optbench trains: an MLP, LeNet-5 and a small CIFAR-style ResNet. No torchvision.

Every model is built from the input shape `(C, H, W)` and the number of classes, so one name
works for 8x8 digits, 28x28 MNIST and 32x32 CIFAR images alike.
"""

from __future__ import annotations

import torch
from torch import nn

from .errors import did_you_mean


def he_init(model: nn.Module) -> nn.Module:
    """He (Kaiming) normal weights and zero biases for every convolution and linear layer.

    The networks use ReLU; torch's default layer init is scaled for a different case and lets the
    signal shrink layer by layer, so plain SGD idles near loss ln(10) for epochs before learning.
    """
    for layer in model.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return model


class MLP(nn.Sequential):
    """Flatten -> (Linear -> ReLU) per hidden width -> Linear. No normalisation layers."""

    def __init__(self, input_shape, num_classes: int, hidden: tuple[int, ...] = (128, 64)):
        widths = [int(torch.tensor(input_shape).prod()), *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for fan_in, fan_out in zip(widths, widths[1:], strict=False):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        super().__init__(*layers, nn.Linear(widths[-1], num_classes))


class LeNet5(nn.Module):
    """LeNet-5 with ReLU and max pooling: conv(6, 5x5) - pool - conv(16, 5x5) - pool - 120 - 84 - classes.

    Adapted to the input size: the first convolution keeps the size (padding 2, as for 28x28
    MNIST); the second pads too when the image would otherwise shrink to nothing (8x8 digits).
    The classifier's input width is measured with a dummy forward pass.
    """

    def __init__(self, input_shape, num_classes: int):
        super().__init__()
        channels, height, width = input_shape
        after_first_pool = min(height, width) // 2
        second_padding = 0 if after_first_pool >= 10 else 2
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5, padding=second_padding),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *input_shape)).shape[1]
        self.classifier = nn.Sequential(
            nn.Linear(flat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes)
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 projection) shortcut."""

    def __init__(self, fan_in: int, fan_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(fan_in, fan_out, 3, stride, 1, bias=False),
            nn.BatchNorm2d(fan_out),
            nn.ReLU(),
            nn.Conv2d(fan_out, fan_out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(fan_out),
        )
        self.shortcut = (
            nn.Identity()
            if stride == 1 and fan_in == fan_out
            else nn.Sequential(nn.Conv2d(fan_in, fan_out, 1, stride, bias=False), nn.BatchNorm2d(fan_out))
        )

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR-style ResNet (He et al. 2016, section 4.2): a 3x3 stem, three stages of widths
    16/32/64 (times `width`), the last two halving the resolution, global average pooling.
    `blocks` per stage: 1 gives ResNet-8, 3 gives ResNet-20.
    """

    def __init__(self, input_shape, num_classes: int, blocks: int = 1, width: int = 1):
        super().__init__()
        widths = [16 * width, 32 * width, 64 * width]
        layers: list[nn.Module] = [
            nn.Conv2d(input_shape[0], widths[0], 3, 1, 1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        ]
        fan_in = widths[0]
        for stage, fan_out in enumerate(widths):
            for block in range(blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(BasicBlock(fan_in, fan_out, stride))
                fan_in = fan_out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(fan_in, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


MODELS = {
    "mlp": MLP,
    "lenet": LeNet5,
    "resnet": ResNet,  # ResNet-8
    "resnet20": lambda shape, classes: ResNet(shape, classes, blocks=3),
}


def build_model(name: str, input_shape, num_classes: int) -> nn.Module:
    """A fresh He-initialised model by name; the caller seeds torch first for reproducible weights."""
    key = name.lower().replace("-", "").replace("_", "")
    if key == "lenet5":
        key = "lenet"
    if key not in MODELS:
        raise did_you_mean("model", name, MODELS)
    return he_init(MODELS[key](tuple(input_shape), num_classes))
