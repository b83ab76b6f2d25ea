r"""Rprop: resilient backpropagation, one adaptive step size per coordinate, as `torch.optim.Rprop`.

Pseudocode (torch.optim.Rprop documentation, with torch's code where the two differ)::

    input: θ_0 ∈ R^d (params), f(θ) (objective), η+, η- (etaplus, etaminus),
           Γ_max, Γ_min (step sizes)                                [code: also maximize]
    initialize: g_prev^0 ← 0, η_0 ← lr (learning rate)
    for t = 1 to ... do
        g_t ← ∇_θ f_t(θ_{t-1})
            [code: if maximize: g_t ← -∇_θ f_t(θ_{t-1})]
        for i = 0, 1, ..., d-1 do
            if g_prev^i g_t^i > 0:
                η_t^i ← min(η_{t-1}^i η+, Γ_max)
            else if g_prev^i g_t^i < 0:
                η_t^i ← max(η_{t-1}^i η-, Γ_min)
                g_t^i ← 0
            else:
                η_t^i ← η_{t-1}^i
        [code: η_t ← clamp(η_{t-1} · (η+ | η- | 1), Γ_min, Γ_max) in all three cases, so a
               step size outside [Γ_min, Γ_max] (e.g. lr itself) is clipped into it]
        θ_t ← θ_{t-1} - η_t sign(g_t)
        g_prev ← g_t
    return θ_t

A complex coordinate is two reals, so both parts of η_0 are lr (as in torch).
State: `step` (t), `prev` (g_prev), `step_size` (η, one per coordinate).
Tensor hyperparameters: lr, etas, step_sizes.
"""

import torch

from .base import (
    PseudocodeOptimizer,
    add_product_,
    check_range,
    new_step_counter,
    one_element_or_per_trial,
    real_view,
    zeros,
)

DOC_DISCREPANCIES = [
    "Rprop: the documented pseudocode has no `maximize`; torch negates the gradient first when it is set.",
    "Rprop: the docs bound only the changed step size (min with Γ_max on growth, max with Γ_min on "
    "shrinking); torch clamps every step size into [Γ_min, Γ_max] each step, including unchanged ones.",
]


class Rprop(PseudocodeOptimizer):
    old_checkpoint_group_defaults = dict(foreach=None, maximize=False, differentiable=False, capturable=False)
    scalar_state = ("step",)
    capturable_checks = "params and state_steps"

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable=False,
                 foreach=None, maximize=False, differentiable=False):
        params = one_element_or_per_trial("lr", lr, params)
        check_range(lr, "Invalid learning rate: {}", low=0.0)
        # torch checks 0 < η- < 1 < η+ and names both values in one message
        eta_message = f"Invalid eta values: {etas[0]}, {etas[1]}"
        check_range(etas[0], eta_message, low=0.0, low_inclusive=False, high=1.0)
        check_range(etas[1], eta_message, low=1.0, low_inclusive=False)
        defaults = dict(lr=lr, etas=etas, step_sizes=step_sizes, maximize=maximize)
        super().__init__(params, defaults, dict(foreach=foreach, capturable=capturable,
                                                differentiable=differentiable))

    def init_state(self, theta, group):
        η = torch.empty_like(theta, memory_format=torch.preserve_format)
        real_view(η)[...] = group["lr"]                 # η_0 ← lr (real and imaginary parts alike)
        return dict(step=new_step_counter(theta, group),
                    prev=zeros(theta),
                    step_size=η)

    def update(self, theta, g, state, group):
        (η_minus, η_plus), (Γ_min, Γ_max) = group["etas"], group["step_sizes"]
        g_prev, η = state["prev"], state["step_size"]
        state["step"] += 1
        if group["maximize"]:
            g = -g                                      # g_t ← -∇f_t(θ_{t-1})
        with torch.no_grad():                           # sign() has derivative 0: nothing for autograd
            s = g.mul(g_prev).sign_()                   # sign(g_prev g_t), coordinate by coordinate
        shrink = s < 0
        # η_t ← η_{t-1}·η+ where g_prev g_t > 0, η_{t-1}·η- where < 0, η_{t-1} where = 0, then
        # clamped. A 0-d one, not a bare 1: where() of two Python numbers would make float32 factors.
        factor = torch.where(s > 0, η_plus, torch.where(shrink, η_minus, s.new_ones(())))
        η.mul_(factor).clamp_(Γ_min, Γ_max)             # η_t ← clamp(η_{t-1}·factor, Γ_min, Γ_max)
        g = g.masked_fill(shrink, 0)                    # g_t ← 0 where g_prev g_t < 0
        add_product_(theta, η, g.sign(), -1)            # θ_t ← θ_{t-1} - η_t sign(g_t)
        g_prev.copy_(g)                                 # g_prev ← g_t
