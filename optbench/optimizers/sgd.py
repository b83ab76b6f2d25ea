r"""Stochastic gradient descent, optionally with (Nesterov) momentum, as `torch.optim.SGD`.

Pseudocode (torch.optim.SGD documentation)::

    input: γ (lr), θ_0 (params), f(θ) (objective), λ (weight decay),
           μ (momentum), τ (dampening), nesterov, maximize
    for t = 1 to ... do
        if maximize: g_t ← -∇_θ f_t(θ_{t-1})
        else:        g_t ←  ∇_θ f_t(θ_{t-1})
        if λ ≠ 0:    g_t ← g_t + λ θ_{t-1}
        if μ ≠ 0:
            if t > 1: b_t ← μ b_{t-1} + (1 - τ) g_t
            else:     b_t ← g_t
            if nesterov: g_t ← g_t + μ b_t
            else:        g_t ← b_t
        θ_t ← θ_{t-1} - γ g_t
    return θ_t

State: `momentum_buffer` (b), created on the first step only when μ ≠ 0, as in torch.
Tensor hyperparameters: lr, momentum, dampening, weight_decay.
"""

from .base import (
    PseudocodeOptimizer,
    add_scaled,
    add_scaled_,
    check_range,
    is_zero,
    one_element_or_per_trial,
    with_scalar_tensors_squeezed,
)

DOC_DISCREPANCIES = []  # torch's documented SGD pseudocode and its code agree


class SGD(PseudocodeOptimizer):
    supports_sparse = True    # as torch.optim.SGD: an nn.Embedding(sparse=True) trains with it
    old_checkpoint_group_defaults = dict(nesterov=False, maximize=False, foreach=None, differentiable=False,
                                         fused=False)
    fused_sparse_error = "`_fused_sgd` does not support sparse gradients"

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 *, maximize=False, foreach=None, differentiable=False, fused=None):
        params = one_element_or_per_trial("lr", lr, params)
        check_range(lr, "Invalid learning rate: {}", low=0.0)
        check_range(momentum, "Invalid momentum value: {}", low=0.0)
        check_range(weight_decay, "Invalid weight_decay value: {}", low=0.0)
        if nesterov and (is_zero(momentum) or not is_zero(dampening)):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults,
                         dict(foreach=foreach, differentiable=differentiable, fused=fused))

    def step_group(self, group):
        # torch reads every momentum buffer before its loop, so a parameter listed twice in a group
        # (torch warns) starts with b_t ← g_t at both places on its first step, the later one kept
        params = group["params"]
        if len({id(p) for p in params}) == len(params):
            super().step_group(group)
            return
        without_buffer = {id(p) for p in params if "momentum_buffer" not in self.state.get(p, {})}
        squeezed = with_scalar_tensors_squeezed(group)
        for p in params:
            if p.grad is not None:
                if id(p) in without_buffer:
                    self.state.get(p, {}).pop("momentum_buffer", None)
                self._step_one(p, squeezed)

    def update(self, theta, g, state, group):
        γ, μ, τ, λ = group["lr"], group["momentum"], group["dampening"], group["weight_decay"]
        if group["maximize"]:
            g = -g                                      # g_t ← -∇f_t(θ_{t-1})
        if not is_zero(λ):
            g = add_scaled(g, theta, λ)                 # g_t ← g_t + λ θ_{t-1}
        if not is_zero(μ):
            if "momentum_buffer" in state:
                b = state["momentum_buffer"]
                add_scaled_(b.mul_(μ), g, 1 - τ)        # b_t ← μ b_{t-1} + (1 - τ) g_t
            else:
                b = state["momentum_buffer"] = g.detach().clone()  # b_t ← g_t
            if group["nesterov"]:
                g = add_scaled(g, b, μ)                 # g_t ← g_t + μ b_t
            else:
                g = b                                   # g_t ← b_t
        add_scaled_(theta, g, -γ)                       # θ_t ← θ_{t-1} - γ g_t
