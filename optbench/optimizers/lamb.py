r"""LAMB (Layer-wise Adaptive Moments for Batch training), as `pytorch_optimizer.Lamb`.

Pseudocode (You et al. 2020, "Large Batch Optimization for Deep Learning: Training BERT in 76
minutes", Algorithm 2; superscript (i) is one parameter tensor, "layer")::

    input: x_1, {η_t} (lr), 0 < β1, β2 < 1, scaling function φ, ε > 0, λ (weight decay)
    initialize: m_0 ← 0, v_0 ← 0
    for t = 1 to T do
        g_t ← ∇ℓ(x_t)
        m_t ← β1 m_{t-1} + (1 - β1) g_t
        v_t ← β2 v_{t-1} + (1 - β2) g_t²
        m_t ← m_t / (1 - β1^t)
        v_t ← v_t / (1 - β2^t)
        r_t ← m_t / (√v_t + ε)
        x_{t+1}^(i) ← x_t^(i) - η_t φ(‖x_t^(i)‖) / ‖r_t^(i) + λ x_t^(i)‖ · (r_t^(i) + λ x_t^(i))

As pytorch-optimizer computes it (its default follows the paper's third version, "without bias
correction" of v), per tensor, with t the group's step counter::

    g_t ← -g_t if maximize
    if weight_decouple: x ← x - η λ x   (x ← x - λ x with fixed_decay), and u_t ← r_t below
    m_t ← β1 m_{t-1} + (1 - β1) g_t     (β1 m_{t-1} + g_t with grad_averaging=False)
    v_t ← β2 v_{t-1} + (1 - β2) g_t²
    u_t ← m_t / (√v_t + ε)  (+ λ x if not weight_decouple)
    ρ_t ← ‖x‖_φ / (‖u_t‖ + ε), with ‖x‖_φ = min(‖x‖, 10); ρ_t ← 1 if ‖x‖ = 0 or ‖u_t‖ = 0; 1 with adam=True
    x ← x - η / (1 - β1^t) · ρ_t · u_t

State: `exp_avg` (m), `exp_avg_sq` (v), and the last `weight_norm` (‖x‖_φ), `adam_norm` (‖u_t‖) and
`trust_ratio` (ρ_t); the step counter `step` (t) lives in the param group, as in the reference.
Not implemented (the reference's extras): rectify, degenerated_to_sgd, pre_norm, AdaNorm.
Tensor hyperparameters: none. The trust ratio reduces over a whole tensor, so trials need separate
parameters.
"""

import torch

from .base import PseudocodeOptimizer, add_product_, add_scaled_, check_range, is_zero, lerp_, zeros

DOC_DISCREPANCIES = [
    "v_t is not bias-corrected, and m_t's correction 1/(1 - β1^t) multiplies the step outside the trust "
    "ratio (where it does not cancel), instead of dividing m_t inside r_t.",
    "weight decay is decoupled by default (x ← x - ηλx before the update; ‖x‖ measured after it); the "
    "paper's r_t + λx is weight_decouple=False.",
    "the trust ratio is φ(‖x‖)/(‖u‖ + ε) with φ(z) = min(z, 10), and 1 when either norm is 0.",
]

WEIGHT_NORM_CLAMP = 10.0   # φ(z) = min(z, 10), pytorch-optimizer's `Lamb.clamp`


class Lamb(PseudocodeOptimizer):
    supports_complex = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0, weight_decouple=True,
                 fixed_decay=False, grad_averaging=True, max_grad_norm=1.0, adam=False, eps=1e-6,
                 foreach=None, maximize=False):
        check_range(lr, "Invalid learning rate: {}", low=0.0)
        check_range(betas[0], "Invalid beta parameter at index 0: {}", low=0.0, high=1.0)
        check_range(betas[1], "Invalid beta parameter at index 1: {}", low=0.0, high=1.0)
        check_range(weight_decay, "Invalid weight_decay value: {}", low=0.0)
        check_range(eps, "Invalid epsilon value: {}", low=0.0)
        defaults = dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay, weight_decouple=weight_decouple,
                        fixed_decay=fixed_decay, grad_averaging=grad_averaging, max_grad_norm=max_grad_norm,
                        adam=adam, eps=eps, maximize=maximize)
        super().__init__(params, defaults, dict(foreach=foreach))

    def prepare_group(self, group):
        group["step"] = group.get("step", 0) + 1                     # t ← t + 1

    def init_state(self, theta, group):
        return dict(exp_avg=zeros(theta), exp_avg_sq=zeros(theta))

    def update(self, x, g, state, group):
        η, (β1, β2), ε, λ, t = group["lr"], group["betas"], group["eps"], group["weight_decay"], group["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        if group["maximize"]:
            g = -g                                                   # g_t ← -∇ℓ(x_t)
        decoupled = group["weight_decouple"]
        if decoupled and not is_zero(λ):
            x.mul_(1 - λ * (1 if group["fixed_decay"] else η))       # x ← x - ηλx
        if group["grad_averaging"]:
            lerp_(m, g, 1 - β1)                                      # m_t ← β1 m_{t-1} + (1 - β1) g_t
        else:
            add_scaled_(m.mul_(β1), g, 1)                            # m_t ← β1 m_{t-1} + g_t
        add_product_(v.mul_(β2), g, g, 1 - β2)                       # v_t ← β2 v_{t-1} + (1 - β2) g_t²
        u = m / v.sqrt().add_(ε)                                     # u_t ← m_t / (√v_t + ε)
        if not decoupled and not is_zero(λ):
            add_scaled_(u, x, λ)                                     # u_t ← u_t + λx
        weight_norm = torch.linalg.norm(x).clamp_(max=WEIGHT_NORM_CLAMP)   # φ(‖x‖)
        adam_norm = torch.linalg.norm(u)                             # ‖u_t‖
        ρ = torch.where((weight_norm != 0) & (adam_norm != 0),      # ρ_t ← φ(‖x‖) / (‖u_t‖ + ε), or 1
                        weight_norm / (adam_norm + ε), 1.0)
        state.update(weight_norm=weight_norm, adam_norm=adam_norm, trust_ratio=ρ)
        if group["adam"]:
            ρ = 1.0                                                  # ρ_t ← 1 (plain Adam step)
        add_scaled_(x, u * ρ, -η / (1 - β1 ** t))                    # x ← x - η/(1 - β1^t) ρ_t u_t
