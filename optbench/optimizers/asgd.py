r"""ASGD: averaged stochastic gradient descent (Polyak–Juditsky), as `torch.optim.ASGD`.

torch.optim.ASGD documents no pseudocode; this is its single-tensor code, written as pseudocode::

    input: γ (lr), λ (lambd, decay term), α (alpha, power of the η schedule),
           t0 (step at which averaging starts), wd (weight decay), maximize
    initialize: η_0 ← γ (step size), μ_0 ← 1 (averaging weight), ā_0 ← 0 (average of θ)
    for t = 1 to ... do
        if maximize: g_t ← -∇_θ f_t(θ_{t-1})
        else:        g_t ←  ∇_θ f_t(θ_{t-1})
        if wd ≠ 0:   g_t ← g_t + wd θ_{t-1}
        θ_t ← θ_{t-1} (1 - λ η_{t-1})
        θ_t ← θ_t - η_{t-1} g_t
        if μ_{t-1} ≠ 1: ā_t ← ā_{t-1} + μ_{t-1} (θ_t - ā_{t-1})
        else:           ā_t ← θ_t
        η_t ← γ / (1 + λ γ t)^α
        μ_t ← 1 / max(1, t - t0)
    return θ_t  (ā_t, the averaged parameters, is in the state)

State: `step` (t), `eta` (η), `mu` (μ): 0-d tensors on the parameter's device, in the step counter's
dtype, as torch stores them (η_0 is the lr at the first step); `ax` (ā), shaped like the parameter.
Tensor hyperparameters: lr, lambd, alpha, t0, weight_decay (η and μ then hold one value per trial).
"""

import torch

from .base import (
    PseudocodeOptimizer,
    add_scaled,
    add_scaled_,
    as_number,
    check_range,
    if_number,
    is_zero,
    new_step_counter,
    one_element_or_per_trial,
    scalar_dtype,
    scale_,
    zeros,
)

DOC_DISCREPANCIES = [
    "ASGD: torch documents no pseudocode; the pseudocode here is transcribed from its code.",
]


class ASGD(PseudocodeOptimizer):
    old_checkpoint_group_defaults = dict(foreach=None, maximize=False, differentiable=False, capturable=False)
    scalar_state = ("step", "eta", "mu")
    scalar_state_on_param_device = True
    capturable_checks = "params, mus, etas, and state_steps"

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, foreach=None,
                 maximize=False, differentiable=False, capturable=False):
        params = one_element_or_per_trial("lr", lr, params)
        check_range(lr, "Invalid learning rate: {}", low=0.0)
        check_range(weight_decay, "Invalid weight_decay value: {}", low=0.0)
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults, dict(foreach=foreach, differentiable=differentiable,
                                                capturable=capturable))

    def init_state(self, theta, group):
        # torch keeps these three on the parameter's device even when not capturable; η_0 ← γ as a
        # value (torch reads lr as a number here, so no gradient flows to it)
        γ = group["lr"].detach() if torch.is_tensor(group["lr"]) else group["lr"]
        return dict(step=new_step_counter(theta, group).to(theta.device),
                    eta=torch.as_tensor(γ, dtype=scalar_dtype(), device=theta.device).clone(),
                    mu=torch.ones((), dtype=scalar_dtype(), device=theta.device),
                    ax=zeros(theta))

    def update(self, theta, g, state, group):
        γ, λ, α, t0, wd = group["lr"], group["lambd"], group["alpha"], group["t0"], group["weight_decay"]
        if isinstance(γ, torch.Tensor):
            γ = γ.detach()                              # torch reads lr as a number here: no gradient to it
        ax = state["ax"]
        state["step"] += 1
        t = state["step"].item()
        # η and μ may be stored in float32 (the step counter's dtype); torch reads them at full precision
        η, μ = as_number(state["eta"], theta), as_number(state["mu"], theta)
        if group["maximize"]:
            g = -g                                      # g_t ← -∇f_t(θ_{t-1})
        if not is_zero(wd):
            g = add_scaled(g, theta, wd)                # g_t ← g_t + wd θ_{t-1}
        scale_(theta, 1 - λ * η)                           # θ_t ← θ_{t-1} (1 - λ η_{t-1})
        add_scaled_(theta, g, -η)                       # θ_t ← θ_t - η_{t-1} g_t
        # if μ_{t-1} ≠ 1: ā_t ← ā_{t-1} + μ_{t-1} (θ_t - ā_{t-1}), else ā_t ← θ_t
        ax.copy_(if_number(μ != 1, lambda: add_scaled(ax, theta - ax, μ), lambda: theta))
        state["eta"] = _refill(state["eta"], γ / (1 + λ * γ * t) ** α)      # η_t ← γ / (1 + λγt)^α
        if isinstance(t0, torch.Tensor):
            state["mu"] = _refill(state["mu"], 1 / (t - t0).clamp(min=1))  # μ_t ← 1 / max(1, t - t0)
        else:
            state["mu"] = _refill(state["mu"], 1 / max(1, t - t0))         # μ_t ← 1 / max(1, t - t0)


def _refill(stored: torch.Tensor, value) -> torch.Tensor:
    """`value` as torch's `stored.copy_(torch.as_tensor(value))` leaves it.

    That is: rounded to the default dtype (what `as_tensor` makes of a Python float), then held in
    `stored`'s dtype (the step counter's at first, the parameter's after `load_state_dict`) and device.
    A new tensor rather than `copy_`, so a tensor hyperparameter may give it a trial dimension.
    """
    return torch.as_tensor(value, dtype=torch.get_default_dtype()).to(stored)
