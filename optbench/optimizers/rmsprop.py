r"""RMSprop, optionally centered and with momentum, as `torch.optim.RMSprop`.

Pseudocode (torch.optim.RMSprop documentation; the maximize line is torch's code)::

    input: α (alpha), γ (lr), θ_0 (params), f(θ) (objective),
           λ (weight decay), μ (momentum), centered, ε (epsilon), maximize
    initialize: v_0 ← 0 (square average), b_0 ← 0 (buffer), g^ave_0 ← 0
    for t = 1 to ... do
        g_t ← ∇_θ f_t(θ_{t-1})
        if maximize: g_t ← -g_t             (torch's code; not in the documented pseudocode)
        if λ ≠ 0:    g_t ← g_t + λ θ_{t-1}
        v_t ← α v_{t-1} + (1 - α) g_t²
        ṽ_t ← v_t
        if centered:
            g^ave_t ← α g^ave_{t-1} + (1 - α) g_t
            ṽ_t ← ṽ_t - (g^ave_t)²
        if μ > 0:
            b_t ← μ b_{t-1} + g_t / (√ṽ_t + ε)
            θ_t ← θ_{t-1} - γ b_t
        else:
            θ_t ← θ_{t-1} - γ g_t / (√ṽ_t + ε)
    return θ_t

State: `step` (t, counted though unused), `square_avg` (v), `momentum_buffer` (b, only when
μ > 0), `grad_avg` (g^ave, only when centered), created as torch creates them.
Tensor hyperparameters: lr, alpha, eps, weight_decay, momentum.
"""


from .base import (
    PseudocodeOptimizer,
    add_product_,
    add_quotient_,
    add_scaled,
    add_scaled_,
    check_range,
    is_zero,
    kept,
    lerp_,
    new_step_counter,
    one_element_or_per_trial,
    zeros,
)

DOC_DISCREPANCIES = [
    "RMSprop: the documented pseudocode has no maximize line; torch's code negates g_t "
    "before weight decay when maximize=True.",
]


class RMSprop(PseudocodeOptimizer):
    old_checkpoint_group_defaults = dict(momentum=0, centered=False, foreach=None, maximize=False,
                                         differentiable=False, capturable=False)
    scalar_state = ("step",)
    capturable_checks = "params and state_steps"

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        params = one_element_or_per_trial("lr", lr, params)
        check_range(lr, "Invalid learning rate: {}", low=0.0)
        check_range(eps, "Invalid epsilon value: {}", low=0.0)
        check_range(momentum, "Invalid momentum value: {}", low=0.0)
        check_range(weight_decay, "Invalid weight_decay value: {}", low=0.0)
        check_range(alpha, "Invalid alpha value: {}", low=0.0)
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults, dict(capturable=capturable, foreach=foreach,
                                                differentiable=differentiable))

    def init_state(self, theta, group):
        state = dict(step=new_step_counter(theta, group),
                     square_avg=zeros(theta))
        if not is_zero(group["momentum"]):
            state["momentum_buffer"] = zeros(theta)
        if group["centered"]:
            state["grad_avg"] = zeros(theta)
        return state

    def update(self, theta, g, state, group):
        γ, α, ε = group["lr"], group["alpha"], group["eps"]
        λ, μ = group["weight_decay"], group["momentum"]
        v = state["square_avg"]
        state["step"] += 1
        if group["maximize"]:
            g = -g                                      # g_t ← -∇f_t(θ_{t-1})
        if not is_zero(λ):
            g = add_scaled(g, theta, λ)                 # g_t ← g_t + λ θ_{t-1}
        add_product_(v.mul_(α), g, g, 1 - α)            # v_t ← α v_{t-1} + (1 - α) g_t²
        if group["centered"]:
            g_ave = state["grad_avg"]
            lerp_(g_ave, g, 1 - α)                      # g^ave_t ← α g^ave_{t-1} + (1 - α) g_t
            v_tilde = v.addcmul(g_ave, g_ave, value=-1)  # ṽ_t ← v_t - (g^ave_t)²
            denominator = kept(v_tilde.sqrt_()).add_(ε) # √ṽ_t + ε
        else:
            denominator = kept(v.sqrt()).add_(ε)        # √ṽ_t + ε, with ṽ_t ← v_t
        if not is_zero(μ):
            b = state["momentum_buffer"]
            add_quotient_(b.mul_(μ), g, denominator)    # b_t ← μ b_{t-1} + g_t / (√ṽ_t + ε)
            add_scaled_(theta, b, -γ)                   # θ_t ← θ_{t-1} - γ b_t
        else:
            add_quotient_(theta, g, denominator, -γ)    # θ_t ← θ_{t-1} - γ g_t / (√ṽ_t + ε)
