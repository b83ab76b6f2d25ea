r"""AdamW: Adam with decoupled weight decay, as `torch.optim.AdamW`.

Pseudocode (torch.optim.AdamW documentation)::

    input: γ (lr), β1, β2 (betas), ε (epsilon), θ_0 (params), f(θ) (objective),
           λ (weight decay), amsgrad, maximize
    initialize: m_0 ← 0, v_0 ← 0, v_0^max ← 0
    for t = 1 to ... do
        if maximize: g_t ← -∇_θ f_t(θ_{t-1})
        else:        g_t ←  ∇_θ f_t(θ_{t-1})
        θ_t ← θ_{t-1} - γ λ θ_{t-1}
        m_t ← β1 m_{t-1} + (1 - β1) g_t
        v_t ← β2 v_{t-1} + (1 - β2) g_t²
        m̂_t ← m_t / (1 - β1^t)
        if amsgrad:
            v_t^max ← max(v_{t-1}^max, v_t)
            v̂_t ← v_t^max / (1 - β2^t)
        else:
            v̂_t ← v_t / (1 - β2^t)
        θ_t ← θ_t - γ m̂_t / (√v̂_t + ε)
    return θ_t

As in torch 2.13, AdamW *is* Adam with `decoupled_weight_decay=True` (and weight_decay 0.01
by default): the update lives in `adam.py`, line by line.
Tensor hyperparameters: lr, betas, eps, weight_decay.
"""

from .adam import Adam

DOC_DISCREPANCIES = []  # AdamW's documented pseudocode is what torch's Adam computes with decoupled decay


class AdamW(Adam):
    checkpoint_group_values = dict(decoupled_weight_decay=True)   # as torch's AdamW.__setstate__

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                 *, maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         foreach=foreach, maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused, decoupled_weight_decay=True)
