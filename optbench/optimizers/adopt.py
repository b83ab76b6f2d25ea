r"""ADOPT (ADaptive gradient method with the OPTimal convergence rate), as `pytorch_optimizer.ADOPT`.

Pseudocode (Taniguchi et al. 2024, "ADOPT: Modified Adam Can Converge with Any β2 with the Optimal
Rate", Algorithm 2, ADOPT with clipping)::

    input: {α_t} (lr), β1, β2, ε, θ_0, clipping values {c_t}
    initialize: v_0 ← g_0 ⊙ g_0,  m_0 ← 0
    for t = 1 to T do
        g_t ← ∇_θ f_t(θ_{t-1})
        m_t ← β1 m_{t-1} + (1 - β1) Clip(g_t / max(√v_{t-1}, ε), c_t)
        θ_t ← θ_{t-1} - α_t m_t
        v_t ← β2 v_{t-1} + (1 - β2) g_t ⊙ g_t
    end for

The point of the algorithm is the order: g_t is normalised by v_{t-1}, which has not seen g_t, and the
normalised gradient (not the raw one) enters the momentum. Clip(x, c) = min(max(x, -c), c) element-wise,
with c_t = t^{1/4} by default (`clip_lambda`; None turns clipping off).

The reference's first `step()` is the initialisation line (v ← g ⊙ g, θ not moved by the update); its
step counter `t` then counts that call, so the first update clips at c(2).
With `maximize` g_t ← -∇f; weight decay (not in the paper), as pytorch-optimizer applies it:
coupled g_t ← g_t + λθ, or decoupled θ ← θ - γλθ (θ ← θ - λθ with `fixed_decay`), on every call.

State: `exp_avg` (m), `exp_avg_sq` (v); the step counter `step` (t) lives in the param group, as in
the reference. Tensor hyperparameters: lr, betas, eps, weight_decay. Element-wise.
"""

import math

import torch

from .base import (
    PseudocodeOptimizer,
    add_product_,
    add_scaled,
    add_scaled_,
    check_range,
    is_zero,
    lerp_,
    state_with_attributes,
    zeros,
)

DOC_DISCREPANCIES = [
    "the first gradient only initialises v_0 ← g_0², as in the paper; the reference counts that call as "
    "step 1, so the first update clips at c(2) = 2^{1/4}, not c(1).",
    "weight decay (coupled or decoupled, optionally fixed) is not in the paper; the reference applies it on "
    "every call, the initialising one included.",
]


def default_clip(t):
    return math.pow(t, 0.25)


class ADOPT(PseudocodeOptimizer):
    __getstate__ = state_with_attributes   # settings kept as attributes, as in the reference

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.9999), clip_lambda=default_clip, weight_decay=0.0,
                 weight_decouple=False, fixed_decay=False, foreach=None, eps=1e-6, maximize=False):
        check_range(lr, "Invalid learning rate: {}", low=0.0)
        check_range(betas[0], "Invalid beta parameter at index 0: {}", low=0.0, high=1.0)
        check_range(betas[1], "Invalid beta parameter at index 1: {}", low=0.0, high=1.0)
        check_range(weight_decay, "Invalid weight_decay value: {}", low=0.0)
        check_range(eps, "Invalid epsilon value: {}", low=0.0)
        self.clip_lambda = clip_lambda      # a function of t: kept out of the groups, as in the reference
        defaults = dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay, weight_decouple=weight_decouple,
                        fixed_decay=fixed_decay, eps=eps, maximize=maximize)
        super().__init__(params, defaults, dict(foreach=foreach))

    def prepare_group(self, group):
        group["step"] = group.get("step", 0) + 1                    # t ← t + 1

    def init_state(self, theta, group):
        return dict(exp_avg=zeros(theta), exp_avg_sq=zeros(theta))

    def update(self, theta, g, state, group):
        γ, (β1, β2), ε, λ, t = group["lr"], group["betas"], group["eps"], group["weight_decay"], group["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        if group["maximize"]:
            g = -g                                                  # g_t ← -∇f_t(θ_{t-1})
        if not is_zero(λ):
            if group["weight_decouple"]:
                theta.mul_(1 - λ * (1 if group["fixed_decay"] else γ))   # θ ← θ - γλθ
            else:
                g = add_scaled(g, theta, λ)                         # g_t ← g_t + λθ
        if t == 1:
            add_product_(v, g, g)                                   # v_0 ← g_0 ⊙ g_0
            return
        normalized = g / torch.maximum(v.sqrt(), torch.as_tensor(ε, dtype=v.dtype))   # g_t / max(√v_{t-1}, ε)
        if self.clip_lambda is not None:
            c = self.clip_lambda(t)
            normalized.clamp_(-c, c)                                # Clip(·, c_t)
        lerp_(m, normalized, 1 - β1)                                # m_t ← β1 m_{t-1} + (1 - β1) Clip(...)
        add_scaled_(theta, m, -γ)                                   # θ_t ← θ_{t-1} - α_t m_t
        add_product_(v.mul_(β2), g, g, 1 - β2)                      # v_t ← β2 v_{t-1} + (1 - β2) g_t²
