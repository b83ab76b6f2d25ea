r"""SOAP (ShampoO with Adam in the Preconditioner's eigenbasis), as `pytorch_optimizer.SOAP`.

Pseudocode (Vyas et al. 2024, "SOAP: Improving and Stabilizing Shampoo using Adam", Algorithm 3, one
step for an m × n layer W; the general case rotates every dimension of a tensor by its own Q)::

    G ← ∇_W φ(W_t)
    G' ← Q_Lᵀ G Q_R                           (rotate the gradient into the eigenbasis)
    M ← β1 M + (1 - β1) G                     (momentum, in the original basis)
    M' ← Q_Lᵀ M Q_R
    V ← β2 V + (1 - β2) G' ⊙ G'               (Adam's second moment, in the eigenbasis)
    N' ← M' / (√V + ε)
    N ← Q_L N' Q_Rᵀ                           (rotate the Adam direction back)
    W ← W - η N
    L ← β_s L + (1 - β_s) G Gᵀ;  R ← β_s R + (1 - β_s) Gᵀ G   (Shampoo's factors)
    if t mod f = 0: Q_L ← QR(L Q_L), Q_R ← QR(R Q_R)          (one power-iteration step)

As pytorch-optimizer computes it, for a tensor with dims d_1..d_k (GG[i] is the factor of dim i,
`[]` where a dim exceeds `max_precondition_dim` or for a 1-D tensor without `precondition_1d`;
Q[i] its eigenbasis, or `[]` for "no rotation")::

    step 1 (per parameter, on its first gradient): GG[i] ← (1 - β_s) G_(i) G_(i)ᵀ, Q[i] ← eigh(GG[i]),
           eigenvectors by decreasing eigenvalue; θ is not moved
    then, with t = step - 1:
    η_t ← η √(1 - β2^t) / (1 - β1^t)       (η_t ← η without correct_bias)
    G' ← G ×_1 Q[1] ... ×_k Q[k];  M, V, N' as above;  N ← N' ×_1 Q[1]ᵀ ... ×_k Q[k]ᵀ
    N ← N / (√mean(N²) + ε)                (normalize_gradient only)
    θ ← θ - η_t N;   θ ← θ - η λ θ         (decoupled weight decay, after the step)
    GG[i] ← β_s GG[i] + (1 - β_s) G_(i) G_(i)ᵀ;   every f steps: reorder by the estimated eigenvalues
    diag(Q[i]ᵀ GG[i] Q[i]) (permuting V's dim i alike), Q[i] ← QR(GG[i] Q[i]) computed in float32

β_s = `shampoo_beta` (β2 by default). With `maximize`, G ← -G (the factors are unaffected).
State: `exp_avg` (M), `exp_avg_sq` (V), `GG`, `Q`, `precondition_frequency`, `shampoo_beta`; the step
counter `step` lives in the param group, as in the reference. Not implemented (the reference's extras):
merge_dims, data_format='channels_last'. Tensor hyperparameters: none: the preconditioners mix every
entry of a tensor, so trials need separate parameters.
"""

import math
from itertools import chain

import torch

from .base import PseudocodeOptimizer, check_range, is_zero, lerp_, state_with_attributes, zeros

DOC_DISCREPANCIES = [
    "the first gradient of each parameter only initialises the factors and eigenbases (θ does not move); "
    "the step counter t then lags the number of calls by one, for the bias correction and the QR schedule.",
    "the eigenbasis refresh also reorders V by the estimated eigenvalues, and runs its QR in float32 "
    "whatever the parameter's dtype (float64 parameters get float32-accurate bases).",
    "weight decay is decoupled and applied after the step (θ ← θ - ηλθ); the bias correction multiplies "
    "η instead of dividing M' and V.",
    "normalize_gradient (N ← N / RMS(N)) is not in the paper.",
]


class SOAP(PseudocodeOptimizer):
    supports_complex = False

    __getstate__ = state_with_attributes   # settings kept as attributes, as in the reference

    def __init__(self, params, lr=3e-3, betas=(0.95, 0.95), shampoo_beta=None, weight_decay=1e-2,
                 precondition_frequency=10, max_precondition_dim=10000, precondition_1d=False, correct_bias=True,
                 normalize_gradient=False, eps=1e-8, maximize=False):
        check_range(lr, "Invalid learning rate: {}", low=0.0)
        check_range(betas[0], "Invalid beta parameter at index 0: {}", low=0.0, high=1.0)
        check_range(betas[1], "Invalid beta parameter at index 1: {}", low=0.0, high=1.0)
        check_range(weight_decay, "Invalid weight_decay value: {}", low=0.0)
        check_range(precondition_frequency, "Invalid precondition_frequency: {}", low=0, low_inclusive=False)
        check_range(eps, "Invalid epsilon value: {}", low=0.0)
        self.maximize = maximize        # not a group entry in the reference either
        defaults = dict(lr=lr, betas=tuple(betas), shampoo_beta=shampoo_beta, weight_decay=weight_decay,
                        precondition_frequency=precondition_frequency, max_precondition_dim=max_precondition_dim,
                        precondition_1d=precondition_1d, correct_bias=correct_bias,
                        normalize_gradient=normalize_gradient, eps=eps)
        super().__init__(params, defaults)

    def step_group(self, group):
        t = group.setdefault("step", 0)
        for theta in group["params"]:
            if theta.grad is not None and not self.state[theta]:
                self.state[theta].update(self.init_state(theta, group))
                self._update_preconditioner(theta.grad, self.state[theta], t, group)   # step 1 of this θ
        group["step"] = t + 1
        if group["step"] > 1:
            super().step_group(group)

    def init_state(self, theta, group):
        limit = group["max_precondition_dim"]
        if theta.dim() == 1:
            sizes = [theta.shape[0] if group["precondition_1d"] and theta.shape[0] <= limit else None]
        else:
            sizes = [size if size <= limit else None for size in theta.shape]
        return dict(exp_avg=zeros(theta), exp_avg_sq=zeros(theta),
                    GG=[torch.zeros(n, n, dtype=theta.dtype, device=theta.device) if n else [] for n in sizes],
                    Q=None, precondition_frequency=group["precondition_frequency"],
                    shampoo_beta=group["shampoo_beta"] if group["shampoo_beta"] is not None else group["betas"][1])

    def update(self, theta, g, state, group):
        (β1, β2), η, ε, λ = group["betas"], group["lr"], group["eps"], group["weight_decay"]
        t = group["step"] - 1
        η_t = η * math.sqrt(1 - β2 ** t) / (1 - β1 ** t) if group["correct_bias"] else η
        if self.maximize:
            g = -g                                                     # G ← -∇φ
        M = state["exp_avg"]
        G_rotated = rotate(g, state["Q"])                              # G' ← Q_Lᵀ G Q_R
        lerp_(M, g, 1 - β1)                                            # M ← β1 M + (1 - β1) G
        lerp_(state["exp_avg_sq"], G_rotated.square(), 1 - β2)         # V ← β2 V + (1 - β2) G' ⊙ G'
        denominator = state["exp_avg_sq"].sqrt().add_(ε)               # √V + ε
        N = rotate(rotate(M, state["Q"]) / denominator, state["Q"], back=True)   # N ← Q_L (M' / (√V + ε)) Q_Rᵀ
        if group["normalize_gradient"]:
            N.div_(torch.mean(N.square()).sqrt_().add_(ε))             # N ← N / (RMS(N) + ε)
        theta.add_(N, alpha=-η_t)                                      # W ← W - η_t N
        if not is_zero(λ):
            theta.mul_(1 - λ * η)                                      # W ← W - ηλW
        self._update_preconditioner(g, state, t, group)

    @staticmethod
    def _update_preconditioner(g, state, t, group):
        β_s, GG = state["shampoo_beta"], state["GG"]
        for i, factor in enumerate(GG):
            if isinstance(factor, torch.Tensor):
                others = [*chain(range(i), range(i + 1, g.dim()))]
                lerp_(factor, torch.tensordot(g, g, dims=[others, others]), 1 - β_s)   # L ← β_s L + (1 - β_s) G Gᵀ
        if state["Q"] is None:
            state["Q"] = [eigenbasis(factor) for factor in GG]        # Q ← eigenvectors of L, R
        if t > 0 and t % state["precondition_frequency"] == 0:
            state["Q"] = refreshed_eigenbasis(state)                   # Q ← QR(L Q), every f steps


def rotate(x: torch.Tensor, Q: list, back: bool = False) -> torch.Tensor:
    """x ×_1 Q[1] ... ×_k Q[k] (Qᵀ x per dim), or with `back` x ×_i Q[i]ᵀ (Q x per dim); `[]` leaves a dim."""
    for basis in Q:
        if isinstance(basis, torch.Tensor):
            x = torch.tensordot(x, basis, dims=[[0], [1 if back else 0]])
        else:
            x = x.permute([*range(1, x.dim()), 0])
    return x


def eigenbasis(factor):
    """Eigenvectors of a symmetric factor, by decreasing eigenvalue (`[]` stays `[]`)."""
    if not isinstance(factor, torch.Tensor):
        return []
    identity = torch.eye(factor.shape[0], dtype=factor.dtype, device=factor.device)
    _, vectors = torch.linalg.eigh(factor + 1e-30 * identity)
    return torch.flip(vectors, dims=[1])


def refreshed_eigenbasis(state) -> list:
    """One power-iteration step per factor, QR(GG Q), after sorting by the estimated eigenvalues
    diag(Qᵀ GG Q); V's matching dim is permuted alike (and stored back)."""
    V, bases = state["exp_avg_sq"], []
    for i, (factor, basis) in enumerate(zip(state["GG"], state["Q"], strict=False)):
        if not isinstance(factor, torch.Tensor):
            bases.append([])
            continue
        product = factor @ basis
        order = torch.argsort((basis * product).sum(dim=0), descending=True)
        V = V.index_select(i, order)
        q, _ = torch.linalg.qr(product.index_select(1, order).to(torch.float32))
        bases.append(q.to(product.dtype))
    state["exp_avg_sq"] = V
    return bases
