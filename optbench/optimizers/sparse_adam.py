r"""SparseAdam: Adam restricted to the entries present in a sparse gradient, as `torch.optim.SparseAdam`.

torch's documentation describes it in words ("a masked version of the Adam algorithm": only the
moments and parameters at the gradient's materialised entries are updated) and gives no
pseudocode; written out as torch's code computes it::

    input: γ (lr), β1, β2 (betas), ε (epsilon), θ_0 (params), f(θ) (objective), maximize
    initialize: m_0 ← 0 (first moment), v_0 ← 0 (second moment)
    for t = 1 to ... do
        if maximize: g_t ← -∇_θ f_t(θ_{t-1})       (a sparse tensor)
        else:        g_t ←  ∇_θ f_t(θ_{t-1})
        S ← the indices present in g_t               (nothing more happens this step if S is empty)
        for i ∈ S only:
            m_{t,i} ← β1 m_{t-1,i} + (1 - β1) g_{t,i}
            v_{t,i} ← β2 v_{t-1,i} + (1 - β2) g_{t,i}²
            θ_{t,i} ← θ_{t-1,i} - γ √(1 - β2^t) / (1 - β1^t) · m_{t,i} / (√v_{t,i} + ε)
    return θ_t

Adam's last line would be θ ← θ - γ m̂_t / (√v̂_t + ε); torch's SparseAdam moves the bias
corrections into the step size, which equals γ m̂_t / (√v̂_t + ε / √(1 - β2^t)).
t counts every step the parameter had a gradient, an empty one included; entries not in S keep
m, v and θ unchanged. Parameters must be dense, gradients sparse (e.g. nn.Embedding(sparse=True)).

State: `step` (t, a Python int as in torch), `exp_avg` (m), `exp_avg_sq` (v).
Tensor hyperparameters: lr, betas, eps (broadcast against the parameter, then read at the present
indices; torch itself takes only a one-element lr tensor).
"""

import torch

from .base import PseudocodeOptimizer, check_range, one_element_or_per_trial, zeros

DOC_DISCREPANCIES = [
    "the docs call it masked Adam, whose step is γ m̂/(√v̂ + ε); torch's code steps "
    "γ √(1-β2^t)/(1-β1^t) · m/(√v + ε), i.e. ε is not bias-corrected",
]


class SparseAdam(PseudocodeOptimizer):
    supports_sparse = True
    supports_complex = False   # torch rejects complex parameters when the optimizer is built

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False):
        params = one_element_or_per_trial("lr", lr, params)
        check_range(lr, "Invalid learning rate: {}", low=0.0, low_inclusive=False)
        check_range(eps, "Invalid epsilon value: {}", low=0.0, low_inclusive=False)
        check_range(betas[0], "Invalid beta parameter at index 0: {}", low=0.0, high=1.0)
        check_range(betas[1], "Invalid beta parameter at index 1: {}", low=0.0, high=1.0)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, maximize=maximize))
        positions = [([i, j], p) for i, group in enumerate(self.param_groups)
                     for j, p in enumerate(group["params"])]
        sparse = [index for index, p in positions if p.is_sparse]
        complex_ = [index for index, p in positions if p.is_complex()]
        if sparse:
            raise ValueError(f"Sparse params at indices {sparse}: "
                             "SparseAdam requires dense parameter tensors")
        if complex_:
            raise ValueError(f"Complex params at indices {complex_}: "
                             "SparseAdam does not support complex parameters")

    def init_state(self, theta, group):
        return dict(step=0,
                    exp_avg=zeros(theta),  # m_0 ← 0
                    exp_avg_sq=zeros(theta))  # v_0 ← 0

    def update(self, theta, g, state, group):
        if not g.is_sparse:
            raise RuntimeError("SparseAdam does not support dense gradients, "
                               "please consider Adam instead")
        m, v = state["exp_avg"], state["exp_avg_sq"]
        state["step"] += 1
        t = state["step"]
        if group.get("maximize", False):                # (older checkpoints lack the key; torch reads it so)
            g = -g                                      # g_t ← -∇f_t(θ_{t-1})
        g = g.coalesce()                                # one value per index: the update is not linear
        S = tuple(g.indices())                          # S ← the indices present in g_t
        g = g.values()                                  # g_{t,i}, i ∈ S
        if g.numel() == 0:
            return
        γ, (β1, β2), ε = (at(h, S, theta) for h in (group["lr"], group["betas"], group["eps"]))
        m_S, v_S = m[S], v[S]                           # the rows i ∈ S, gathered once
        # The moving averages in torch's form, m + (1 - β1)(g - m), which rounds as torch does
        m_S = (g - m_S).mul_(1 - β1).add_(m_S)          # m_{t,i} ← β1 m_{t-1,i} + (1 - β1) g_{t,i}
        v_S = (g * g - v_S).mul_(1 - β2).add_(v_S)      # v_{t,i} ← β2 v_{t-1,i} + (1 - β2) g_{t,i}²
        m[S], v[S] = m_S, v_S
        step_size = γ * (1 - β2 ** t) ** 0.5 / (1 - β1 ** t)  # γ √(1 - β2^t) / (1 - β1^t)
        # θ_{t,i} ← θ_{t-1,i} - step size · m_{t,i} / (√v_{t,i} + ε)
        theta[S] = theta[S] + -step_size * m_S.div(v_S.sqrt().add_(ε))

def at(h, S, theta):
    """A hyperparameter's value at the indices S: a tensor is broadcast against θ, then indexed."""
    if isinstance(h, (tuple, list)):
        return tuple(at(x, S, theta) for x in h)
    if isinstance(h, torch.Tensor):
        # a one-element tensor stays a 0-d tensor, as torch computes with it (same rounding)
        return h.reshape(()) if h.numel() == 1 else h.expand_as(theta)[S]
    return h
