r"""Prodigy, as `prodigyopt.Prodigy` (the authors' package): Adam whose step size d is estimated.

Pseudocode (Mishchenko & Defazio 2024, "Prodigy: An Expeditiously Adaptive Parameter-Free Learner",
Algorithm 4, the Adam version; all parameters of all groups form one vector x)::

    input: d_0 > 0, x_0, β1, β2, ε, γ_k (lr)
    initialize: r_0 ← 0, s_0 ← 0, m_0 ← 0, v_0 ← 0
    for k = 0 to n do
        g_k ← ∇f(x_k)
        m_{k+1} ← β1 m_k + (1 - β1) d_k g_k
        v_{k+1} ← β2 v_k + (1 - β2) d_k² g_k²
        r_{k+1} ← √β2 r_k + (1 - √β2) γ_k d_k² ⟨g_k, x_0 - x_k⟩
        s_{k+1} ← √β2 s_k + (1 - √β2) γ_k d_k² g_k
        d̂_{k+1} ← r_{k+1} / ‖s_{k+1}‖_1
        d_{k+1} ← max(d_k, d̂_{k+1})
        x_{k+1} ← x_k - γ_k d_k m_{k+1} / (√v_{k+1} + d_k ε)
    end for

As the reference computes it, with β3 = `beta3` (√β2 by default) and η_k = d_k γ_k c_k, c_k the
optional Adam bias correction √(1 - β2^{k+1}) / (1 - β1^{k+1})::

    g_k ← g_k + λ x_k                                  (coupled weight decay, decouple=False)
    m_{k+1} ← β1 m_k + (1 - β1) d_k g_k                (no m when β1 = 0)
    v_{k+1} ← β2 v_k + (1 - β2) d_k² g_k²
    r_{k+1} ← β3 r_k + (d_k / d_0) η_k ⟨g_k, x_0 - x_k⟩
    s_{k+1} ← β3 s_k + (d_k / d_0) η_k g_k              ((d_k / d_0) d_k g_k with safeguard_warmup)
    d̂_{k+1} ← d_coef r_{k+1} / ‖s_{k+1}‖_1
    d_max ← max(d_max, d̂_{k+1});  d_{k+1} ← min(d_max, d_k · growth_rate)   (after max(d_k, d̂) at d_k = d_0)
    x ← x - λ η_k x                                    (decoupled weight decay, decouple=True)
    x_{k+1} ← x_k - η_k m_{k+1} / (√v_{k+1} + d_{k+1} ε)   (β1 = 0: x_k - η_k d_{k+1} g_k / (...))

State: per parameter `step`, `s`, `p0` (x_0, flattened), `exp_avg` (m), `exp_avg_sq` (v); per group, as
the reference keeps them: `d`, `d_max`, `d_numerator` (r), `d_denom` (‖s‖_1), `d_hat`, `k`.
All groups must share one lr (or have lr 0). Tensor hyperparameters: none; d is a sum over every
parameter, so trials need separate parameters.
"""

import math

import torch

from .base import (
    PseudocodeOptimizer,
    add_product_,
    add_quotient_,
    add_scaled,
    add_scaled_,
    check_range,
    zeros,
)

DOC_DISCREPANCIES = [
    "the ε term of the update uses the new estimate d_{k+1} (the paper: d_k); so does the β1 = 0 update.",
    "r and s drop the paper's (1 - √β2) factor and carry an extra d_k/d_0; both cancel in r/‖s‖_1.",
    "d_coef (scales d̂), growth_rate (caps d's growth), safeguard_warmup, weight decay and the optional "
    "Adam bias correction are not in the paper's box.",
    "when ‖s‖_1 = 0 (all gradients zero so far) the reference returns without updating anything.",
]


class Prodigy(PseudocodeOptimizer):
    supports_complex = False

    def __init__(self, params, lr=1.0, betas=(0.9, 0.999), beta3=None, eps=1e-8, weight_decay=0, decouple=True,
                 use_bias_correction=False, safeguard_warmup=False, d0=1e-6, d_coef=1.0,
                 growth_rate=float("inf")):
        check_range(d0, "Invalid d0 value: {}", low=0.0, low_inclusive=False)
        check_range(lr, "Invalid learning rate: {}", low=0.0, low_inclusive=False)
        check_range(eps, "Invalid epsilon value: {}", low=0.0, low_inclusive=False)
        check_range(betas[0], "Invalid beta parameter at index 0: {}", low=0.0, high=1.0)
        check_range(betas[1], "Invalid beta parameter at index 1: {}", low=0.0, high=1.0)
        defaults = dict(lr=lr, betas=tuple(betas), beta3=beta3, eps=eps, weight_decay=weight_decay,
                        d=d0, d0=d0, d_max=d0, d_numerator=0.0, d_coef=d_coef, k=0, growth_rate=growth_rate,
                        use_bias_correction=use_bias_correction, decouple=decouple,
                        safeguard_warmup=safeguard_warmup)
        super().__init__(params, defaults)

    def init_state(self, x, group):
        state = dict(step=0, s=zeros(x.flatten()),
                     p0=x.flatten().clone() if x.any() else torch.tensor(0, dtype=x.dtype, device=x.device))
        if group["betas"][0] > 0:
            state["exp_avg"] = zeros(x)
        state["exp_avg_sq"] = zeros(x)
        return state

    @torch.no_grad()
    def step(self, closure=None):
        """One Prodigy step over every group: estimate d from all gradients, then move every parameter."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        first = self.param_groups[0]
        (β1, β2), k, d, d0 = first["betas"], first["k"], first["d"], first["d0"]
        β3 = first["beta3"] if first["beta3"] is not None else math.sqrt(β2)
        γ = max(group["lr"] for group in self.param_groups)
        c = (1 - β2 ** (k + 1)) ** 0.5 / (1 - β1 ** (k + 1)) if first["use_bias_correction"] else 1
        η = d * γ * c                                                  # η_k ← d_k γ_k c_k
        gradients = {}
        r_increment, s_norm = 0.0, 0.0
        for group in self.param_groups:
            if group["lr"] not in (γ, 0.0):
                raise RuntimeError("Setting different lr values in different parameter groups is only "
                                   "supported for values of 0")
            for x in (x for x in group["params"] if x.grad is not None):
                g = x.grad
                if group["weight_decay"] != 0 and not group["decouple"]:
                    g = add_scaled(g, x, group["weight_decay"])       # g_k ← g_k + λ x_k
                gradients[x] = g
                state = self.state[x]
                if not state:
                    state.update(self.init_state(x, group))
                if group["lr"] > 0.0:
                    r_increment += (d / d0) * η * torch.dot(g.flatten(), state["p0"] - x.flatten()).item()
                    self._update_moments(g, state, d, β1, β2)
                    s_weight = (d / d0) * (d if group["safeguard_warmup"] else η)
                    add_scaled_(state["s"].mul_(β3), g.flatten(), s_weight)   # s ← β3 s + (d_k/d_0) η_k g_k
                    s_norm += state["s"].abs().sum().item()           # ‖s_{k+1}‖_1
        if s_norm == 0:
            return loss
        r = first["d_numerator"] * β3 + r_increment                   # r_{k+1} ← β3 r_k + ...
        d_hat = first["d_coef"] * r / s_norm                           # d̂_{k+1} ← d_coef r_{k+1} / ‖s_{k+1}‖_1
        if d == d0:
            d = max(d, d_hat)                                          # d ← max(d_k, d̂_{k+1}) (first growth)
        d_max = max(first["d_max"], d_hat)                             # d_max ← max(d_max, d̂_{k+1})
        d = min(d_max, d * first["growth_rate"])                       # d_{k+1} ← min(d_max, d_k · growth_rate)
        for group in self.param_groups:
            group.update(d_numerator=r, d_denom=s_norm, d=d, d_max=d_max, d_hat=d_hat)
            for x in (x for x in group["params"] if x.grad is not None):
                self._update_parameter(x, gradients[x], self.state[x], group, η, d, β1)
            group["k"] = group["k"] + 1
        return loss

    @staticmethod
    def _update_moments(g, state, d, β1, β2):
        if β1 > 0:
            add_scaled_(state["exp_avg"].mul_(β1), g, d * (1 - β1))            # m_{k+1} ← β1 m_k + (1 - β1) d_k g_k
        add_product_(state["exp_avg_sq"].mul_(β2), g, g, d * d * (1 - β2))     # v_{k+1} ← β2 v_k + (1 - β2) d_k² g_k²

    @staticmethod
    def _update_parameter(x, g, state, group, η, d, β1):
        state["step"] += 1
        denominator = state["exp_avg_sq"].sqrt().add_(d * group["eps"])        # √v_{k+1} + d_{k+1} ε
        if group["weight_decay"] != 0 and group["decouple"]:
            add_scaled_(x, x, -group["weight_decay"] * η)                      # x ← x - λ η_k x
        if β1 > 0:
            add_quotient_(x, state["exp_avg"], denominator, -η)                # x_{k+1} ← x_k - η_k m_{k+1} / (...)
        else:
            add_quotient_(x, g, denominator, -η * d)                           # x_{k+1} ← x_k - η_k d g_k / (...)
