r"""Adadelta, as `torch.optim.Adadelta`.

Pseudocode (torch.optim.Adadelta documentation; the maximize line is torch's code)::

    input: γ (lr), θ_0 (params), f(θ) (objective), ρ (decay), λ (weight decay),
           ε (epsilon), maximize
    initialize: v_0 ← 0 (square avg), u_0 ← 0 (accumulate variables)
    for t = 1 to ... do
        g_t ← ∇_θ f_t(θ_{t-1})
        if maximize: g_t ← -g_t             (torch's code; not in the documented pseudocode)
        if λ ≠ 0:    g_t ← g_t + λ θ_{t-1}
        v_t ← v_{t-1} ρ + g_t² (1 - ρ)
        Δx_t ← √(u_{t-1} + ε) / √(v_t + ε) · g_t
        u_t ← u_{t-1} ρ + Δx_t² (1 - ρ)
        θ_t ← θ_{t-1} - γ Δx_t
    return θ_t

State: `step` (t, counted though unused), `square_avg` (v), `acc_delta` (u).
Tensor hyperparameters: lr, rho, eps, weight_decay.
"""


from .base import (
    PseudocodeOptimizer,
    add_product_,
    add_scaled,
    add_scaled_,
    check_range,
    is_zero,
    kept,
    new_step_counter,
    one_element_or_per_trial,
    zeros,
)

DOC_DISCREPANCIES = [
    "Adadelta: the documented pseudocode has no maximize line; torch's code negates g_t "
    "before weight decay when maximize=True.",
]


class Adadelta(PseudocodeOptimizer):
    old_checkpoint_group_defaults = dict(foreach=None, maximize=False, differentiable=False, capturable=False)
    scalar_state = ("step",)
    capturable_checks = "params and state_steps"
    capturable_on_xla = False

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None,
                 *, capturable=False, maximize=False, differentiable=False):
        params = one_element_or_per_trial("lr", lr, params)
        check_range(lr, "Invalid learning rate: {}", low=0.0)
        check_range(rho, "Invalid rho value: {}", low=0.0, high=1.0, high_inclusive=True)
        check_range(eps, "Invalid epsilon value: {}", low=0.0)
        check_range(weight_decay, "Invalid weight_decay value: {}", low=0.0)
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults, dict(capturable=capturable, foreach=foreach,
                                                differentiable=differentiable))

    def init_state(self, theta, group):
        return dict(step=new_step_counter(theta, group),
                    square_avg=zeros(theta),
                    acc_delta=zeros(theta))

    def update(self, theta, g, state, group):
        γ, ρ, ε, λ = group["lr"], group["rho"], group["eps"], group["weight_decay"]
        v, u = state["square_avg"], state["acc_delta"]
        state["step"] += 1
        if group["maximize"]:
            g = -g                                      # g_t ← -∇f_t(θ_{t-1})
        if not is_zero(λ):
            g = add_scaled(g, theta, λ)                 # g_t ← g_t + λ θ_{t-1}
        add_product_(v.mul_(ρ), g, g, 1 - ρ)            # v_t ← v_{t-1} ρ + g_t² (1 - ρ)
        Δx = kept(kept((u + ε).sqrt_()).div_((v + ε).sqrt_())).mul_(g)  # Δx_t ← √(u_{t-1}+ε) / √(v_t+ε) · g_t
        add_product_(u.mul_(ρ), Δx, Δx, 1 - ρ)          # u_t ← u_{t-1} ρ + Δx_t² (1 - ρ)
        add_scaled_(theta, Δx, -γ)                      # θ_t ← θ_{t-1} - γ Δx_t
