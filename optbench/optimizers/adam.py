r"""Adam, as `torch.optim.Adam` (and, with decoupled weight decay, AdamW).

Pseudocode (torch.optim.Adam documentation; the decoupled line is torch's code, the
documented form of which lives in AdamW's docs)::

    input: γ (lr), β1, β2 (betas), θ_0 (params), f(θ) (objective),
           λ (weight decay), amsgrad, maximize, ε (epsilon), decoupled_weight_decay
    initialize: m_0 ← 0 (first moment), v_0 ← 0 (second moment), v_0^max ← 0
    for t = 1 to ... do
        if maximize: g_t ← -∇_θ f_t(θ_{t-1})
        else:        g_t ←  ∇_θ f_t(θ_{t-1})
        if λ ≠ 0:
            if decoupled_weight_decay: θ_{t-1} ← θ_{t-1} - γ λ θ_{t-1}
            else:                      g_t ← g_t + λ θ_{t-1}
        m_t ← β1 m_{t-1} + (1 - β1) g_t
        v_t ← β2 v_{t-1} + (1 - β2) g_t²
        m̂_t ← m_t / (1 - β1^t)
        if amsgrad:
            v_t^max ← max(v_{t-1}^max, v_t)
            v̂_t ← v_t^max / (1 - β2^t)
        else:
            v̂_t ← v_t / (1 - β2^t)
        θ_t ← θ_{t-1} - γ m̂_t / (√v̂_t + ε)
    return θ_t

State: `step` (t), `exp_avg` (m), `exp_avg_sq` (v), `max_exp_avg_sq` (v^max, amsgrad only).
Tensor hyperparameters: lr, betas, eps, weight_decay.
"""

import torch

from .base import (
    PseudocodeOptimizer,
    add_product_,
    add_quotient_,
    check_range,
    kept,
    lerp_,
    maximum_,
    new_step_counter,
    one_element_or_per_trial,
    weight_decayed,
    zeros,
)

DOC_DISCREPANCIES = [
    "Adam: the documented pseudocode has no decoupled_weight_decay line; torch's code then shrinks "
    "θ_{t-1} ← θ_{t-1} - γλθ_{t-1} instead of adding λθ_{t-1} to g_t (AdamW's documented line).",
]


class Adam(PseudocodeOptimizer):
    old_checkpoint_group_defaults = dict(amsgrad=False, maximize=False, foreach=None, capturable=False,
                                         differentiable=False, decoupled_weight_decay=False, fused=None)
    scalar_state = ("step",)
    capturable_checks = "params and state_steps"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
                 *, foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        # torch's foreach kernels take these as numbers; it refuses tensors up front, and so do we
        if isinstance(lr, torch.Tensor) and foreach and not capturable:
            raise ValueError("lr as a Tensor is not supported for capturable=False and foreach=True")
        params = one_element_or_per_trial("lr", lr, params)
        check_adam_arguments(lr, betas, eps, weight_decay)
        if not (all(isinstance(β, float) for β in betas) or all(isinstance(β, torch.Tensor) for β in betas)):
            raise ValueError("betas must be either both floats or both Tensors")
        for i, beta in enumerate(betas):
            if isinstance(beta, torch.Tensor) and foreach and not capturable:
                raise ValueError(f"betas[{i}] as a Tensor is not supported for capturable=False and "
                                 "foreach=True")
            params = one_element_or_per_trial(f"betas[{i}]", beta, params)
        # one-element tensor betas are stored 0-d, as torch stores them (its `_to_scalar`)
        betas = tuple(β.reshape(()) if isinstance(β, torch.Tensor) and β.numel() == 1 else β for β in betas)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults, dict(foreach=foreach, capturable=capturable,
                                                differentiable=differentiable, fused=fused))

    def init_state(self, theta, group):
        state = dict(step=new_step_counter(theta, group),
                     exp_avg=zeros(theta),
                     exp_avg_sq=zeros(theta))
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = zeros(theta)
        return state

    def update(self, theta, g, state, group):
        γ, (β1, β2), ε, λ = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        state["step"] += 1
        t = state["step"].item()
        if group["maximize"]:
            g = -g                                      # g_t ← -∇f_t(θ_{t-1})
        # if λ ≠ 0: θ_{t-1} ← θ_{t-1} - γλθ_{t-1} (decoupled), else g_t ← g_t + λ θ_{t-1}
        g = weight_decayed(g, theta, γ, λ, group["decoupled_weight_decay"])
        lerp_(m, g, 1 - β1)                             # m_t ← β1 m_{t-1} + (1 - β1) g_t
        add_product_(v.mul_(β2), g, g, 1 - β2)          # v_t ← β2 v_{t-1} + (1 - β2) g_t²
        if group["amsgrad"]:
            v_max = state["max_exp_avg_sq"]
            maximum_(v_max, v)                          # v_t^max ← max(v_{t-1}^max, v_t)
            v = v_max                                   # (v̂_t below is then v_t^max / (1 - β2^t))
        # The bias corrections are numbers: m̂_t ← m_t / (1 - β1^t) is folded into the step size and
        # v̂_t ← v_t / (1 - β2^t) into the denominator, as torch does, so no m̂_t or v̂_t is stored.
        denominator = kept(v.sqrt()).div_((1 - β2 ** t) ** 0.5).add_(ε)   # √v̂_t + ε
        add_quotient_(theta, m, denominator, -γ / (1 - β1 ** t))    # θ_t ← θ_{t-1} - γ m̂_t / (√v̂_t + ε)


def check_adam_arguments(lr, betas, eps, weight_decay):
    """torch.optim's checks for the Adam family, elementwise when a hyperparameter is a tensor."""
    check_range(lr, "Invalid learning rate: {}", low=0.0)
    check_range(eps, "Invalid epsilon value: {}", low=0.0)
    check_range(betas[0], "Invalid beta parameter at index 0: {}", low=0.0, high=1.0)
    check_range(betas[1], "Invalid beta parameter at index 1: {}", low=0.0, high=1.0)
    check_range(weight_decay, "Invalid weight_decay value: {}", low=0.0)
