"""Parameter-group recipes: which optimizer, with which settings, each tensor of a network gets.

- `muon`: Muon on the hidden weight matrices, AdamW on everything else, the way Muon is used in
  practice (Jordan et al. 2024, "Muon: an optimizer for hidden layers"): Muon orthogonalises 2-D
  updates, so it cannot train a bias, a normalisation gain, an embedding table or the output layer.
  Hidden = every weight with 2 or more dimensions except the output layer (the weight of the
  network's last `nn.Linear`, or its last weight when it has none) and `nn.Embedding` tables (a
  transformer's token and position embeddings; a head tied to the token embedding is that table);
  convolution kernels [out, in, kh, kw] are stepped as [out, in·kh·kw] matrices. The AdamW part
  takes the task's AdamW defaults. `--optimizer muon` applies it by itself.
- `no-decay`: the spec's optimizer with weight decay on weight matrices and kernels only, none on
  biases, normalisation weights (tensors of fewer than 2 dimensions) and `nn.Embedding` tables, as
  in GPT-2 and nanoGPT.

`build_optimizer` returns one `torch.optim.Optimizer`, so the warm-up, lr schedulers and the
training loop need not know a recipe was used; `describe` is what results record.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..errors import OptbenchError, did_you_mean
from ..specs import OptimizerSpec, parse_optimizer

RECIPES = ("muon", "no-decay")


def recipe_for(optimizer: OptimizerSpec, recipe: str | None) -> str | None:
    """The recipe a run uses: `muon` for Muon whatever was asked (Muon alone cannot train a bias),
    else the one asked for ('none' or None: none). Unknown names, and `no-decay` for an optimizer
    without weight_decay, are OptbenchErrors."""
    if recipe not in (None, "none") + RECIPES:
        raise did_you_mean("parameter-group recipe", recipe, list(RECIPES) + ["none"])
    if optimizer.family == "muon":
        return "muon"
    if recipe == "muon":
        raise OptbenchError(f"the muon recipe is for the muon optimizer, not '{optimizer.text}'")
    if recipe == "no-decay" and "weight_decay" not in optimizer.resolved():
        raise OptbenchError(
            f"the no-decay recipe needs an optimizer with weight_decay; '{optimizer.text}' has none"
        )
    return None if recipe in (None, "none") else recipe


def split_parameters(network: nn.Module) -> tuple[list, list, list]:
    """(hidden matrices, hidden kernels of more than 2 dimensions, the rest) of `network`, in order;
    hidden as the module's docstring defines it."""
    weights = [p for p in _trainable(network) if p.ndim >= 2]
    linears = [m for m in network.modules() if isinstance(m, nn.Linear)]
    head = linears[-1].weight if linears else (weights[-1] if weights else None)
    excluded = _embedding_tables(network) | {id(head)}
    matrices = [p for p in weights if id(p) not in excluded and p.ndim == 2]
    kernels = [p for p in weights if id(p) not in excluded and p.ndim > 2]
    hidden = {id(p) for p in matrices + kernels}
    rest = [p for p in _trainable(network) if id(p) not in hidden]
    return matrices, kernels, rest


def _trainable(network: nn.Module) -> list:
    return [p for p in network.parameters() if p.requires_grad]


def _embedding_tables(network: nn.Module) -> set[int]:
    """ids of the weights of `network`'s `nn.Embedding` layers (looked up by row, not multiplied)."""
    return {id(m.weight) for m in network.modules() if isinstance(m, nn.Embedding)}


def build_optimizer(
    optimizer: OptimizerSpec,
    recipe: str | None,
    network: nn.Module,
    defaults_for: Callable[[OptimizerSpec], dict],
    fast: bool = False,
    expected_steps: int | None = None,
) -> torch.optim.Optimizer:
    """`optimizer` over `network`'s parameters as `recipe` (from `recipe_for`) divides them; each
    optimizer part gets `defaults_for(its spec)` (the task's `default_hparams`) under its own settings.
    fast, expected_steps: the fast path where the algorithm has one, told the run's length (`build`)."""
    defaults = defaults_for(optimizer)
    path = dict(fast=fast, expected_steps=expected_steps)
    if recipe is None:
        return optimizer.build(network.parameters(), defaults, **path)
    if recipe == "no-decay":
        tables = _embedding_tables(network)
        decayed = [p for p in _trainable(network) if p.ndim >= 2 and id(p) not in tables]
        undecayed = [p for p in _trainable(network) if p.ndim < 2 or id(p) in tables]
        groups = [
            group
            for group in ({"params": decayed}, {"params": undecayed, "weight_decay": 0.0})
            if group["params"]
        ]
        return optimizer.build(groups, defaults, **path)
    matrices, kernels, rest = split_parameters(network)
    flattened = [(kernel, _matrix_view(kernel)) for kernel in kernels]
    parts = [optimizer.build(matrices + [view for _, view in flattened], defaults)]
    if rest:
        adamw = parse_optimizer("adamw")
        parts.append(adamw.build(rest, defaults_for(adamw), **path))
    return Combined(parts, flattened)


def describe(recipe: str | None, defaults_for: Callable[[OptimizerSpec], dict]) -> dict | None:
    """What a run's results record about its recipe: its name, its rule and the other optimizer's
    settings (with `defaults_for(its spec)`, the task's defaults, under them)."""
    if recipe is None:
        return None
    if recipe == "no-decay":
        return {"recipe": recipe, "rule": "weight_decay=0 on tensors of fewer than 2 dimensions"}
    adamw = parse_optimizer("adamw")
    return {
        "recipe": recipe,
        "rule": "muon on hidden weights of 2+ dimensions (kernels flattened); adamw on biases, norm "
        "weights and the output layer",
        "adamw_hparams": adamw.resolved(defaults_for(adamw)),
    }


def note(recipe: str | None, defaults_for: Callable[[OptimizerSpec], dict]) -> str | None:
    """One line for the command's output, saying how the recipe divides the parameters."""
    if recipe is None:
        return None
    if recipe == "no-decay":
        return "recipe no-decay: no weight decay on biases and normalisation weights"
    lr = describe(recipe, defaults_for)["adamw_hparams"]["lr"]
    return (
        f"recipe muon: Muon on the hidden weight matrices (conv kernels flattened), AdamW (lr={lr:g}) on "
        "biases, normalisation weights and the output layer, since Muon alone cannot train them"
    )


def _matrix_view(kernel: torch.Tensor) -> torch.Tensor:
    """A leaf tensor sharing `kernel`'s storage, shaped [out, in·kh·kw]: steps on it move the kernel."""
    view = kernel.detach().view(kernel.shape[0], -1)
    return view.requires_grad_(True)


class Combined(torch.optim.Optimizer):
    """Several optimizers stepped as one. Its `param_groups` are theirs (the same dicts), so the
    warm-up and an lr scheduler set every part's lr; `flattened` pairs (kernel, matrix view) get the
    kernel's gradient reshaped before each step."""

    def __init__(self, optimizers: list, flattened: list):
        self.optimizers, self.flattened = optimizers, flattened
        super().__init__([group for part in optimizers for group in part.param_groups], {})

    @torch.no_grad()
    def step(self, closure=None):
        if closure is not None:
            raise OptbenchError("a parameter-group recipe steps without a closure")
        for kernel, view in self.flattened:
            view.grad = None if kernel.grad is None else kernel.grad.view(view.shape)
        for part in self.optimizers:
            part.step()

    def zero_grad(self, set_to_none: bool = True):
        for part in self.optimizers:
            part.zero_grad(set_to_none)
        for kernel, _ in self.flattened:
            if set_to_none or kernel.grad is None:
                kernel.grad = None
            else:
                kernel.grad.zero_()

    def state_dict(self) -> dict:
        return {"optimizers": [part.state_dict() for part in self.optimizers]}

    def load_state_dict(self, state_dict: dict) -> None:
        for part, saved in zip(self.optimizers, state_dict["optimizers"], strict=True):
            part.load_state_dict(saved)
