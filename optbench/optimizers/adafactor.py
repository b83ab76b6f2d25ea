r"""Adafactor, as `torch.optim.Adafactor`.

Pseudocode (torch.optim.Adafactor documentation)::

    input: γ (lr), τ (β2 decay), θ_0 (params), f(θ) (objective),
           ε1, ε2 (epsilons), d (clipping threshold), λ (weight decay), maximize
    initialize: R_0 ← 0 (second moment row factor), C_0 ← 0 (second moment col factor),
                V̂_0 ← 0 (second moment for vectors)
    for t = 1 to ... do
        if maximize: G_t ← -∇_θ f_t(θ_{t-1})
        else:        G_t ←  ∇_θ f_t(θ_{t-1})
        β̂2_t ← 1 - t^τ
        ρ_t ← min(γ, 1/√t)
        α_t ← max(ε2, RMS(θ_{t-1})) ρ_t
        θ_t ← θ_{t-1} - γ λ θ_{t-1}
        if dim(G_t) > 1:
            R_t ← β̂2_t R_{t-1} + (1 - β̂2_t) (G_t ⊙ G_t) · 1_m
                  torch's code: (1 - β̂2_t) mean_row(G_t ⊙ G_t)     = (G_t ⊙ G_t) · 1_m / m
            C_t ← β̂2_t C_{t-1} + (1 - β̂2_t) 1ᵀ_n · (G_t ⊙ G_t)
                  torch's code: (1 - β̂2_t) mean_column(G_t ⊙ G_t)  = 1ᵀ_n · (G_t ⊙ G_t) / n
            V̂_t ← R_t · C_t / max(1ᵀ_n · R_t, ε1)
                  torch's code: R_t · C_t / max(1ᵀ_n · R_t / n, ε1)
        else:
            V̂_t ← β̂2_t V̂_{t-1} + (1 - β̂2_t) (G_t ⊙ G_t)
        U_t ← G_t / max(√V̂_t, ε1)
        Û_t ← U_t / max(1, RMS(U_t) / d)
        θ_t ← θ_{t-1} - α_t Û_t
              torch's code: θ_t ← θ_t - α_t Û_t   (the weight-decayed θ_t)
    return θ_t

RMS(x) = ‖x‖₂ / √numel(x). ε1 = None (the default) means the machine epsilon of θ's dtype.
For a tensor of dim > 2 the last two dimensions are factored, separately for each index of the
leading ones (R_t, C_t keep those dimensions). With means (torch's note) V̂_t is the same as with
sums; only where ε1 clamps the denominator does it act on the mean rather than the sum.

State: `step` (t), and `row_var` (R, shape [..., n, 1]) with `col_var` (C, shape [..., 1, m]) for
tensors of dim ≥ 2, or `variance` (V̂) for vectors.
Tensor hyperparameters: none (lr may be a one-element tensor, as in torch). Adafactor reduces
across each tensor (RMS, row and column means), so a batch of trials needs one parameter per trial.
"""

import torch

from .base import PseudocodeOptimizer, add_scaled_, check_range, is_zero, lerp_, new_step_counter, zeros

DOC_DISCREPANCIES = [
    "R_t, C_t are row and column means of G⊙G, and the V̂_t denominator the mean of R_t, "
    "where the pseudocode sums (torch's note says so); ε1 clamps that mean",
    "the last line subtracts α_t Û_t from the weight-decayed θ_t, not from θ_{t-1} as written",
]


class Adafactor(PseudocodeOptimizer):
    supports_complex = False   # torch: "Adafactor does not support complex parameters"
    old_checkpoint_group_defaults = dict(foreach=None)
    scalar_state = ("step",)

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0,
                 *, foreach=None, maximize=False):
        if isinstance(lr, torch.Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        check_range(lr, "Learning rate should be >= 0 but is: {}", low=0.0)
        check_range(beta2_decay, "beta2_decay should be <= 0 but is: {}", high=0.0, high_inclusive=True)
        if eps[0] is not None:
            check_range(eps[0], "epsilon1 should be >= 0 but is: {}", low=0.0)
        check_range(eps[1], "epsilon2 should be >= 0 but is: {}", low=0.0)
        check_range(d, "Clipping threshold d should be >= 1 but is: {}", low=1.0)
        check_range(weight_decay, "weight_decay should be >= 0 but is: {}", low=0.0)
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults, dict(foreach=foreach))

    def init_state(self, theta, group):
        state = dict(step=new_step_counter(theta, group))
        if theta.dim() > 1:
            state["row_var"] = theta.new_zeros(theta.shape[:-1] + (1,))                  # R_0 ← 0
            state["col_var"] = theta.new_zeros(theta.shape[:-2] + (1, theta.shape[-1])) # C_0 ← 0
        else:
            state["variance"] = zeros(theta)  # V̂_0 ← 0
        return state

    def update(self, theta, g, state, group):
        γ, τ, d, λ = group["lr"], group["beta2_decay"], group["d"], group["weight_decay"]
        ε1, ε2 = group["eps"]
        if ε1 is None:
            ε1 = torch.finfo(theta.dtype).eps
        G = -g if group["maximize"] else g              # G_t ← ∓∇f_t(θ_{t-1})
        state["step"] += 1
        t = state["step"].item()
        one_minus_β2_hat = t ** τ                       # 1 - β̂2_t, β̂2_t ← 1 - t^τ (t^τ itself, as torch)
        ρ = min(γ, 1 / t ** 0.5)                        # ρ_t ← min(γ, 1/√t)
        α = max(ε2, rms(theta)) * ρ                     # α_t ← max(ε2, RMS(θ_{t-1})) ρ_t
        if not is_zero(λ):
            theta.mul_(1 - γ * λ)                       # θ_t ← θ_{t-1} - γλθ_{t-1}
        if G.dim() > 1:
            R, C = state["row_var"], state["col_var"]
            # the means of G_t ⊙ G_t along rows and columns, formed as torch does (squared norms / count)
            row_mean = torch.norm(G, dim=-1, keepdim=True).square_().div_(G.size(-1))  # (G_t ⊙ G_t) · 1_m / m
            lerp_(R, row_mean, one_minus_β2_hat)            # R_t ← β̂2_t R_{t-1} + (1 - β̂2_t) row mean
            col_mean = torch.norm(G, dim=-2, keepdim=True).square_().div_(G.size(-2))  # 1ᵀ_n · (G_t ⊙ G_t) / n
            lerp_(C, col_mean, one_minus_β2_hat)            # C_t ← β̂2_t C_{t-1} + (1 - β̂2_t) column mean
            R_mean = R.mean(dim=-2, keepdim=True)           # 1ᵀ_n · R_t / n
            V_hat = (R @ C).div_(R_mean.clamp(min=ε1))      # V̂_t ← R_t · C_t / max(1ᵀ_n · R_t / n, ε1)
        else:
            V_hat = state["variance"]
            lerp_(V_hat, G * G, one_minus_β2_hat)           # V̂_t ← β̂2_t V̂_{t-1} + (1 - β̂2_t) G_t ⊙ G_t
        U = V_hat.clamp(min=ε1 * ε1).rsqrt_().mul_(G)   # U_t ← G_t / max(√V̂_t, ε1)
        # Û_t ← U_t / max(1, RMS(U_t)/d) is U_t times a number, folded into the step size
        clip = max(1.0, U.norm(2).item() / (U.numel() ** 0.5 * d))   # max(1, RMS(U_t)/d), as torch forms it
        add_scaled_(theta, U, -α / clip)                # θ_t ← θ_t - α_t Û_t

def rms(x):
    """RMS(x) = ‖x‖₂ / √numel(x), as a Python number (torch's code reads it with .item())."""
    return x.norm(2).item() / x.numel() ** 0.5
