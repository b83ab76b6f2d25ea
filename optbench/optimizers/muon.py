r"""Muon (MomentUm Orthogonalized by Newton–Schulz), as `torch.optim.Muon`. 2-D parameters only.

Pseudocode (torch.optim.Muon documentation)::

    input: γ (lr), λ (weight decay), μ (momentum), nesterov ∈ {True, False},
           (a, b, c) (NS coefficients), ε (epsilon), k (NS steps), θ_0 (params), f(θ) (objective)
    initialize: B_0 ← 0 (momentum buffer)
    for t = 1 to ... do
        g_t ← ∇_θ f_t(θ_{t-1})
        B_t ← μ B_{t-1} + g_t
              torch's code: B_t ← μ B_{t-1} + (1 - μ) g_t
        B̃_t ← g_t + μ B_t   if nesterov
              torch's code: B̃_t ← (1 - μ) g_t + μ B_t
        B̃_t ← B_t           otherwise
        O_t ← NS^{(a,b,c)}_k(B̃_t; ε)
        θ_t ← θ_{t-1} - γ λ θ_{t-1}           (decoupled weight decay)
        γ ← AdjustLR(γ; shape(θ_t))
        θ_t ← θ_t - γ O_t
    return θ_t

AdjustLR for a parameter of shape A × B: "original" (also adjust_lr_fn=None): γ √max(1, A/B);
"match_rms_adamw": 0.2 γ √max(A, B). The adjusted γ serves this update only (weight decay uses γ).

NS^{(a,b,c)}_k(G; ε), the Newton–Schulz iteration of the Muon post the docs cite, computed in
bfloat16 exactly as torch computes it (so O_t is a bfloat16 matrix)::

    X ← G (in bfloat16);  if rows > columns: X ← Xᵀ
    X ← X / max(‖X‖_F, ε)
    repeat k times:
        A ← X Xᵀ
        B ← b A + c A A
        X ← a X + B X
    if transposed: X ← Xᵀ
    return X

State: `momentum_buffer` (B). No step counter, as in torch.
Tensor hyperparameters: none (lr may be a one-element tensor, as in torch). Muon orthogonalises
each matrix, so a batch of trials needs one parameter per trial.
"""

import torch

from .base import PseudocodeOptimizer, add_scaled_, check_range, lerp_, zeros

DOC_DISCREPANCIES = [
    "momentum: torch averages, B_t ← μ B_{t-1} + (1 - μ) g_t; the docs write B_t ← μ B_{t-1} + g_t",
    "nesterov: torch uses B̃_t ← (1 - μ) g_t + μ B_t; the docs write B̃_t ← g_t + μ B_t",
]

# Keller Jordan's Newton–Schulz coefficients (a, b, c), torch's default.
DEFAULT_NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


class Muon(PseudocodeOptimizer):
    supports_complex = False   # torch: "Muon does not support complex parameters"

    def __init__(self, params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=DEFAULT_NS_COEFFICIENTS, eps=1e-7, ns_steps=5, adjust_lr_fn=None):
        if isinstance(lr, torch.Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        check_range(lr, "Learning rate should be >= 0 but is: {}", low=0.0)
        check_range(momentum, "momentum should be >= 0 but is: {}", low=0.0)
        check_range(weight_decay, "weight decay should be >= 0 but is: {}", low=0.0)
        if adjust_lr_fn not in (None, "original", "match_rms_adamw"):
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                        ns_coefficients=ns_coefficients, eps=eps, ns_steps=ns_steps,
                        adjust_lr_fn=adjust_lr_fn)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError("Muon only supports 2D parameters whereas we found a parameter "
                                     f"with size: {p.size()}")

    def init_state(self, theta, group):
        B = zeros(theta)  # B_0 ← 0
        return dict(momentum_buffer=B)

    def update(self, theta, g, state, group):
        γ, λ, μ = group["lr"], group["weight_decay"], group["momentum"]
        B = state["momentum_buffer"]
        lerp_(B, g, 1 - μ)                              # B_t ← μ B_{t-1} + (1 - μ) g_t
        if group["nesterov"]:
            B_tilde = g.lerp(B, μ)                      # B̃_t ← (1 - μ) g_t + μ B_t (rounded once, as torch)
        else:
            B_tilde = B                                 # B̃_t ← B_t
        a_b_c, k, ε = group["ns_coefficients"], group["ns_steps"], group["eps"]
        O = newton_schulz(B_tilde, a_b_c, k, ε)         # O_t ← NS^{(a,b,c)}_k(B̃_t; ε)  # noqa: E741 (the paper's O)
        theta.mul_(1 - γ * λ)                           # θ_t ← θ_{t-1} - γλθ_{t-1}
        γ_adjusted = adjust_lr(γ, group["adjust_lr_fn"], theta.shape)   # γ ← AdjustLR(γ; shape(θ_t))
        add_scaled_(theta, O, -γ_adjusted)              # θ_t ← θ_t - γ O_t


def newton_schulz(G, coefficients, k, ε):
    """NS^{(a,b,c)}_k(G; ε): k quintic Newton–Schulz steps towards the orthogonal factor of G.

    In bfloat16, like torch. `torch.addmm(M, P, Q, beta=β, alpha=α)` is β M + α P Q rounded once,
    which is how torch forms B and X (separate products round differently in bfloat16).
    """
    if k >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if G.ndim != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    if len(coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    a, b, c = coefficients
    transposed = G.size(0) > G.size(1)
    X = G.bfloat16()                                # X ← G (in bfloat16)
    if transposed:
        X = X.T                                     # wide side first: X Xᵀ is the smaller Gram matrix
    # X ← X / max(‖X‖_F, ε) (spectral norm ≤ 1). In place, as torch: for a bfloat16 B̃_t = B_t,
    # G.bfloat16() is B_t itself, and torch then normalises the momentum buffer too.
    X.div_(X.norm().clamp(min=ε))
    for _ in range(k):
        A = X @ X.T                                 # A ← X Xᵀ
        B = torch.addmm(A, A, A, beta=b, alpha=c)   # B ← b A + c A A
        X = torch.addmm(X, B, X, beta=a)            # X ← a X + B X
    return X.T if transposed else X


def adjust_lr(γ, adjust_lr_fn, shape):
    """AdjustLR(γ; A × B): keep the orthogonalised update's RMS consistent across matrix shapes."""
    A, B = shape[:2]
    if adjust_lr_fn == "match_rms_adamw":
        return γ * 0.2 * max(A, B) ** 0.5           # γ ← 0.2 γ √max(A, B)
    return γ * max(1, A / B) ** 0.5                 # γ ← γ √max(1, A/B)   ("original", the default)
