r"""Adamax: Adam with the infinity norm, as `torch.optim.Adamax`.

Pseudocode (torch.optim.Adamax documentation; the maximize line is torch's code)::

    input: γ (lr), β1, β2 (betas), θ_0 (params), f(θ) (objective),
           λ (weight decay), ε (epsilon), maximize
    initialize: m_0 ← 0 (first moment), u_0 ← 0 (infinity norm)
    for t = 1 to ... do
        g_t ← ∇_θ f_t(θ_{t-1})
        if maximize: g_t ← -g_t             (torch's code; not in the documented pseudocode)
        if λ ≠ 0:    g_t ← g_t + λ θ_{t-1}
        m_t ← β1 m_{t-1} + (1 - β1) g_t
        u_t ← max(β2 u_{t-1}, |g_t| + ε)
        θ_t ← θ_{t-1} - γ m_t / ((1 - β1^t) u_t)
    return θ_t

State: `step` (t), `exp_avg` (m), `exp_inf` (u).
Tensor hyperparameters: lr, betas, eps, weight_decay.
"""

from .adam import check_adam_arguments
from .base import (
    PseudocodeOptimizer,
    add_quotient_,
    add_scaled,
    is_zero,
    lerp_,
    maximum_,
    new_step_counter,
    one_element_or_per_trial,
    zeros,
)

DOC_DISCREPANCIES = [
    "Adamax: the documented pseudocode has no maximize line; torch's code negates g_t "
    "before weight decay when maximize=True.",
]


class Adamax(PseudocodeOptimizer):
    old_checkpoint_group_defaults = dict(foreach=None, maximize=False, differentiable=False, capturable=False)
    scalar_state = ("step",)
    capturable_checks = "params and state_steps"

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None,
                 *, maximize=False, differentiable=False, capturable=False):
        params = one_element_or_per_trial("lr", lr, params)
        check_adam_arguments(lr, betas, eps, weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults, dict(foreach=foreach, differentiable=differentiable,
                                                capturable=capturable))

    def init_state(self, theta, group):
        return dict(step=new_step_counter(theta, group),
                    exp_avg=zeros(theta),
                    exp_inf=zeros(theta))

    def update(self, theta, g, state, group):
        γ, (β1, β2), ε, λ = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        m, u = state["exp_avg"], state["exp_inf"]
        state["step"] += 1
        t = state["step"].item()
        if group["maximize"]:
            g = -g                                      # g_t ← -∇f_t(θ_{t-1})
        if not is_zero(λ):
            g = add_scaled(g, theta, λ)                 # g_t ← g_t + λ θ_{t-1}
        lerp_(m, g, 1 - β1)                             # m_t ← β1 m_{t-1} + (1 - β1) g_t
        maximum_(u.mul_(β2), g.abs().add_(ε))          # u_t ← max(β2 u_{t-1}, |g_t| + ε)
        add_quotient_(theta, m, u, -γ / (1 - β1 ** t))  # θ_t ← θ_{t-1} - γ m_t / ((1 - β1^t) u_t)
