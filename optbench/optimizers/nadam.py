r"""NAdam: Adam with Nesterov momentum, as `torch.optim.NAdam`.

Pseudocode (torch.optim.NAdam documentation)::

    input: γ (lr), β1, β2 (betas), θ_0 (params), f(θ) (objective), ε (epsilon),
           λ (weight decay), ψ (momentum decay), decoupled_weight_decay, maximize
    initialize: m_0 ← 0 (first moment), v_0 ← 0 (second moment)
    for t = 1 to ... do
        if maximize: g_t ← -∇_θ f_t(θ_{t-1})
        else:        g_t ←  ∇_θ f_t(θ_{t-1})
        θ_t ← θ_{t-1}
        if λ ≠ 0:
            if decoupled_weight_decay: θ_t ← θ_{t-1} - γ λ θ_{t-1}
            else:                      g_t ← g_t + λ θ_{t-1}
        μ_t     ← β1 (1 - ½ · 0.96^(t ψ))
        μ_{t+1} ← β1 (1 - ½ · 0.96^((t+1) ψ))
        m_t ← β1 m_{t-1} + (1 - β1) g_t
        v_t ← β2 v_{t-1} + (1 - β2) g_t²
        m̂_t ← μ_{t+1} m_t / (1 - ∏_{i=1}^{t+1} μ_i) + (1 - μ_t) g_t / (1 - ∏_{i=1}^{t} μ_i)
        v̂_t ← v_t / (1 - β2^t)
        θ_t ← θ_t - γ m̂_t / (√v̂_t + ε)
    return θ_t

State: `step` (t), `mu_product` (∏_{i=1}^{t} μ_i, a 0-d tensor starting at 1, as torch stores it),
`exp_avg` (m), `exp_avg_sq` (v).
Tensor hyperparameters: lr, betas, eps, weight_decay, momentum_decay (with tensor betas or
momentum_decay, `mu_product` takes their shape, one product per trial).
"""

import torch

from .adam import check_adam_arguments
from .base import (
    PseudocodeOptimizer,
    add_product_,
    add_quotient_,
    as_number,
    check_range,
    kept,
    lerp_,
    new_step_counter,
    one_element_or_per_trial,
    scalar_dtype,
    weight_decayed,
    zeros,
)

DOC_DISCREPANCIES = []


class NAdam(PseudocodeOptimizer):
    old_checkpoint_group_defaults = dict(maximize=False, foreach=None, capturable=False, differentiable=False,
                                         decoupled_weight_decay=False)
    scalar_state = ("step", "mu_product")
    capturable_checks = "params, mu_products and state_steps"

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        params = one_element_or_per_trial("lr", lr, params)
        check_adam_arguments(lr, betas, eps, weight_decay)
        check_range(momentum_decay, "Invalid momentum_decay value: {}", low=0.0)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults,
                         dict(foreach=foreach, capturable=capturable, differentiable=differentiable))

    def init_state(self, theta, group):
        return dict(step=new_step_counter(theta, group),
                    mu_product=torch.tensor(1.0, dtype=scalar_dtype()),
                    exp_avg=zeros(theta),
                    exp_avg_sq=zeros(theta))

    def update(self, theta, g, state, group):
        γ, (β1, β2), ε, λ, ψ = (group["lr"], group["betas"], group["eps"], group["weight_decay"],
                                group["momentum_decay"])
        m, v = state["exp_avg"], state["exp_avg_sq"]
        state["step"] += 1
        t = state["step"].item()
        if group["maximize"]:
            g = -g                                      # g_t ← -∇f_t(θ_{t-1})
        # if λ ≠ 0: θ_t ← θ_{t-1} - γλθ_{t-1} (decoupled), else g_t ← g_t + λ θ_{t-1}
        g = weight_decayed(g, theta, γ, λ, group["decoupled_weight_decay"])
        μ = β1 * (1 - 0.5 * 0.96 ** (t * ψ))            # μ_t ← β1 (1 - ½·0.96^(tψ))
        μ_next = β1 * (1 - 0.5 * 0.96 ** ((t + 1) * ψ))  # μ_{t+1} ← β1 (1 - ½·0.96^((t+1)ψ))
        # ∏_{i=1}^{t} μ_i is stored in the step counter's dtype. μ_t is rounded to it before multiplying,
        # as torch's in-place `mu_product *= mu` does, so a batched run keeps the same products as
        # separate runs; the product is then read at full precision, as torch's `.item()` does.
        product = state["mu_product"]
        state["mu_product"] = product * torch.as_tensor(μ, dtype=product.dtype)  # ∏_{i=1}^{t} μ_i
        Π = as_number(state["mu_product"], theta)
        Π_next = Π * μ_next                             # ∏_{i=1}^{t+1} μ_i
        lerp_(m, g, 1 - β1)                             # m_t ← β1 m_{t-1} + (1 - β1) g_t
        add_product_(v.mul_(β2), g, g, 1 - β2)          # v_t ← β2 v_{t-1} + (1 - β2) g_t²
        denominator = kept(v.div(1 - β2 ** t).sqrt_()).add_(ε)  # √v̂_t + ε, with v̂_t ← v_t / (1 - β2^t)
        # θ_t ← θ_t - γ m̂_t / (√v̂_t + ε), with
        # m̂_t ← μ_{t+1} m_t / (1 - ∏_{i=1}^{t+1} μ_i) + (1 - μ_t) g_t / (1 - ∏_{i=1}^{t} μ_i),
        # one term of m̂_t at a time (its coefficients are numbers, so m̂_t is never stored)
        add_quotient_(theta, g, denominator, -γ * (1 - μ) / (1 - Π))
        add_quotient_(theta, m, denominator, -γ * μ_next / (1 - Π_next))
