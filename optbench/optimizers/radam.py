r"""RAdam: Adam with a rectified (variance-corrected) adaptive learning rate, as `torch.optim.RAdam`.

Pseudocode (torch.optim.RAdam documentation)::

    input: γ (lr), β1, β2 (betas), θ_0 (params), f(θ) (objective), λ (weight decay),
           maximize, ε (epsilon), decoupled_weight_decay
    initialize: m_0 ← 0 (first moment), v_0 ← 0 (second moment),
                ρ_∞ ← 2 / (1 - β2) - 1
    for t = 1 to ... do
        if maximize: g_t ← -∇_θ f_t(θ_{t-1})
        else:        g_t ←  ∇_θ f_t(θ_{t-1})
        θ_t ← θ_{t-1}
        if λ ≠ 0:
            if decoupled_weight_decay: θ_t ← θ_t - γ λ θ_t
            else:                      g_t ← g_t + λ θ_t
        m_t ← β1 m_{t-1} + (1 - β1) g_t
        v_t ← β2 v_{t-1} + (1 - β2) g_t²
        m̂_t ← m_t / (1 - β1^t)
        ρ_t ← ρ_∞ - 2 t β2^t / (1 - β2^t)
        if ρ_t > 5:
            l_t ← √(1 - β2^t) / (√v_t + ε)
            r_t ← √( (ρ_t - 4)(ρ_t - 2) ρ_∞ / ((ρ_∞ - 4)(ρ_∞ - 2) ρ_t) )
            θ_t ← θ_t - γ m̂_t r_t l_t
        else:
            θ_t ← θ_t - γ m̂_t
    return θ_t

State: `step` (t), `exp_avg` (m), `exp_avg_sq` (v).
Tensor hyperparameters: lr, eps, weight_decay. Not betas: "if ρ_t > 5" is one branch for the whole
tensor, so β2 must be the same number in every trial.
"""


from .adam import check_adam_arguments
from .base import (
    PseudocodeOptimizer,
    add_product_,
    as_number,
    if_number,
    kept,
    lerp_,
    new_step_counter,
    one_element_or_per_trial,
    weight_decayed,
    zeros,
)

DOC_DISCREPANCIES = []


class RAdam(PseudocodeOptimizer):
    old_checkpoint_group_defaults = dict(foreach=None, maximize=False, differentiable=False,
                                         decoupled_weight_decay=False, capturable=False)
    scalar_state = ("step",)
    capturable_checks = "params and state_steps"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        params = one_element_or_per_trial("lr", lr, params)
        check_adam_arguments(lr, betas, eps, weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults,
                         dict(foreach=foreach, capturable=capturable, differentiable=differentiable))

    def init_state(self, theta, group):
        return dict(step=new_step_counter(theta, group),
                    exp_avg=zeros(theta),
                    exp_avg_sq=zeros(theta))

    def update(self, theta, g, state, group):
        γ, (β1, β2), ε, λ = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        state["step"] += 1
        t = state["step"].item()
        if group["maximize"]:
            g = -g                                      # g_t ← -∇f_t(θ_{t-1})
        # if λ ≠ 0: θ_t ← θ_t - γλθ_t (decoupled), else g_t ← g_t + λ θ_t
        g = weight_decayed(g, theta, γ, λ, group["decoupled_weight_decay"])
        lerp_(m, g, 1 - β1)                             # m_t ← β1 m_{t-1} + (1 - β1) g_t
        add_product_(v.mul_(β2), g, g, 1 - β2)          # v_t ← β2 v_{t-1} + (1 - β2) g_t²
        # The lines below form each product in torch's order (m̂_t, then γ m̂_t, then l_t, then r_t),
        # so float16/bfloat16 round as torch does.
        bias_correction1 = 1 - β1 ** t
        m_hat = m / bias_correction1                    # m̂_t ← m_t / (1 - β1^t)
        ρ_inf = 2 / (1 - β2) - 1                        # ρ_∞ ← 2 / (1 - β2) - 1
        ρ_t = ρ_inf - 2 * t * β2 ** t / (1 - β2 ** t)   # ρ_t ← ρ_∞ - 2tβ2^t / (1 - β2^t)
        γ = as_number(γ, theta)

        def rectified():                                # if ρ_t > 5:
            # r_t ← √((ρ_t - 4)(ρ_t - 2)ρ_∞ / ((ρ_∞ - 4)(ρ_∞ - 2)ρ_t))
            r_t = ((ρ_t - 4) * (ρ_t - 2) * ρ_inf / ((ρ_inf - 4) * (ρ_inf - 2) * ρ_t)) ** 0.5
            l_t = (1 - β2 ** t) ** 0.5 / kept(v.sqrt()).add_(ε)   # l_t ← √(1 - β2^t) / (√v_t + ε)
            return m_hat * γ * l_t * r_t                # θ_t ← θ_t - γ m̂_t r_t l_t

        # else: θ_t ← θ_t - γ m̂_t
        theta.sub_(if_number(ρ_t > 5, rectified, lambda: m_hat * γ))
