r"""Adagrad, as `torch.optim.Adagrad`.

Pseudocode (torch.optim.Adagrad documentation; the maximize line is torch's code)::

    input: γ (lr), θ_0 (params), f(θ) (objective), λ (weight decay),
           τ (initial accumulator value), η (lr decay), ε (epsilon), maximize
    initialize: state_sum_0 ← τ
    for t = 1 to ... do
        g_t ← ∇_θ f_t(θ_{t-1})
        if maximize: g_t ← -g_t             (torch's code; not in the documented pseudocode)
        γ̃ ← γ / (1 + (t - 1) η)
        if λ ≠ 0:    g_t ← g_t + λ θ_{t-1}
        state_sum_t ← state_sum_{t-1} + g_t²
        θ_t ← θ_{t-1} - γ̃ g_t / (√state_sum_t + ε)
    return θ_t

As in torch, the state of every parameter is created in the constructor (so a state_dict taken
before the first step already holds it) and τ is the constructor's `initial_accumulator_value`,
even for a param group that sets its own. A complex parameter's sum starts at τ + τi, i.e. τ in
both parts of its real view.
Sparse gradients are accepted (without weight decay, as in torch): entries a sparse gradient
omits have g = 0, so the update below leaves their sum and parameter unchanged, as torch's
sparse path does (except with ε = 0 and a sum still 0, where this gives 0/0 = NaN and torch skips).

State: `step` (t), `sum` (state_sum).
Tensor hyperparameters: lr, lr_decay, weight_decay, eps.
"""

import torch

from .base import (
    PseudocodeOptimizer,
    add_quotient_,
    add_scaled,
    check_range,
    is_zero,
    kept,
    new_step_counter,
    one_element_or_per_trial,
)

DOC_DISCREPANCIES = [
    "Adagrad: the documented pseudocode has no maximize line; torch's code negates g_t "
    "before weight decay when maximize=True.",
    "Adagrad: state_sum_0 ← τ uses the constructor's initial_accumulator_value for every "
    "param group; a per-group initial_accumulator_value is stored but ignored.",
]


class Adagrad(PseudocodeOptimizer):
    supports_sparse = True
    old_checkpoint_group_defaults = dict(foreach=None, maximize=False, differentiable=False, fused=None)
    scalar_state = ("step",)
    fused_sparse_error = "`fused` does not support sparse grad or complex param"

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        params = one_element_or_per_trial("lr", lr, params)
        check_range(lr, "Invalid learning rate: {}", low=0.0)
        check_range(lr_decay, "Invalid lr_decay value: {}", low=0.0)
        check_range(weight_decay, "Invalid weight_decay value: {}", low=0.0)
        check_range(initial_accumulator_value, "Invalid initial_accumulator_value value: {}", low=0.0)
        check_range(eps, "Invalid epsilon value: {}", low=0.0)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, maximize=maximize)
        super().__init__(params, defaults, dict(foreach=foreach, differentiable=differentiable, fused=fused))
        if fused and differentiable:
            raise RuntimeError("`fused` does not support `differentiable`")
        if fused and foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p].update(self.init_state(p, group))

    def init_state(self, theta, group):
        τ = self.defaults["initial_accumulator_value"]
        τ = complex(τ, τ) if torch.is_complex(theta) else τ
        return dict(step=new_step_counter(theta, group),
                    sum=torch.full_like(theta, τ, memory_format=torch.preserve_format))

    def update(self, theta, g, state, group):
        γ, η, λ, ε = group["lr"], group["lr_decay"], group["weight_decay"], group["eps"]
        state_sum = state["sum"]
        state["step"] += 1
        t = state["step"].item()
        if group["maximize"]:
            g = -g                                      # g_t ← -∇f_t(θ_{t-1})
        if not is_zero(λ):
            if g.is_sparse:
                raise RuntimeError("weight_decay option is not compatible with sparse gradients")
            g = add_scaled(g, theta, λ)                 # g_t ← g_t + λ θ_{t-1}
        if g.is_sparse:
            g = g.to_dense()                            # omitted entries: g_t = 0, nothing changes
        γ_tilde = γ / (1 + (t - 1) * η)                 # γ̃ ← γ / (1 + (t - 1) η)
        state_sum.addcmul_(g, g)                        # state_sum_t ← state_sum_{t-1} + g_t²
        denominator = kept(state_sum.sqrt()).add_(ε)    # √state_sum_t + ε
        add_quotient_(theta, g, denominator, -γ_tilde)  # θ_t ← θ_{t-1} - γ̃ g_t / (√state_sum_t + ε)
