"""Image classification as a `TrainingProblem`: a data set (`data.py`) and a model (`models.py`),
trained with cross-entropy and scored by validation loss and accuracy.

The whole data set lives on the device as tensors and is batched by index (no DataLoader). Logits
from a bfloat16 autocast are scored in float32; float32/float64 logits as they are.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F

from ..data import Dataset
from ..models import build_model

EVAL_BATCH = 1024  # rows per forward pass when evaluating a whole split


class ClassificationProblem:
    """One run's classification problem (see `tasks.problem.TrainingProblem`).

    dataset: the loaded data set; model_name: an `optbench.models` name; seed: the initial weights
    (`torch.manual_seed(seed)` before the model is built); device, dtype: where the weights and
    inputs live; bf16: evaluate under bfloat16 autocast (the loop autocasts training forwards);
    channels_last: the model's and inputs' memory format.
    """

    def __init__(
        self,
        dataset: Dataset,
        model_name: str,
        seed: int,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        bf16: bool = False,
        channels_last: bool = False,
    ):
        self.dataset, self.device, self.dtype = dataset, device, dtype
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else nullcontext
        torch.manual_seed(seed)
        self.model = (
            build_model(model_name, dataset.input_shape, dataset.num_classes)
            .to(device, dtype)
            .to(memory_format=self.memory_format)
        )
        x_train, self.y_train = (t.to(device) for t in dataset.train)
        self.x_train = x_train.to(dtype)
        self.n_train = len(self.y_train)
        self.has_test = dataset.test is not None

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x_train[indices].contiguous(memory_format=self.memory_format), self.y_train[indices]

    def loss(self, output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(_full_precision(output), targets)

    def batch_metrics(self, output: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"accuracy": (output.argmax(1) == targets).sum()}

    def evaluate(self, model: torch.nn.Module, split: str = "val") -> dict[str, float]:
        """{"SPLIT_loss": mean cross-entropy, "SPLIT_accuracy"} of `model` on the 'val' or 'test' split."""
        loss, accuracy = evaluate_split(
            model, getattr(self.dataset, split), self.device, self.dtype, self.autocast, self.memory_format
        )
        return {f"{split}_loss": loss, f"{split}_accuracy": accuracy}


@torch.no_grad()
def evaluate_split(
    network, split, device, dtype=torch.float32, autocast=nullcontext, memory_format=torch.contiguous_format
) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of `network` on an (images, labels) split, in eval mode."""
    was_training = network.training
    network.eval()
    images, labels = split
    total_loss = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    for start in range(0, len(labels), EVAL_BATCH):
        inputs = images[start : start + EVAL_BATCH].to(device, dtype).contiguous(memory_format=memory_format)
        targets = labels[start : start + EVAL_BATCH].to(device)
        with autocast():
            logits = network(inputs)
        total_loss += F.cross_entropy(_full_precision(logits), targets, reduction="sum").double()
        correct += (logits.argmax(1) == targets).sum()
    network.train(was_training)
    return total_loss.item() / len(labels), correct.item() / len(labels)


def _full_precision(logits: torch.Tensor) -> torch.Tensor:
    return logits if logits.dtype in (torch.float32, torch.float64) else logits.float()
