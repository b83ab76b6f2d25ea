r"""Schedule-Free AdamW and SGD, as `schedulefree.AdamWScheduleFree` and `schedulefree.SGDScheduleFree`.

Pseudocode (Defazio et al. 2024, "The Road Less Scheduled", Algorithm 1, Schedule-Free AdamW;
Schedule-Free SGD is the same box with u_t ← g_t + λ y_t and no v_t, β = momentum)::

    input: x_1, γ (lr), λ (weight decay), T_warmup, β1, β2, ε
    z_1 ← x_1;  v_0 ← 0
    for t = 1 to T do
        y_t ← (1 - β1) z_t + β1 x_t                         (momentum via interpolation)
        g_t ← ∇f(y_t, ζ_t)                                  (gradient at y)
        v_t ← β2 v_{t-1} + (1 - β2) g_t²
        γ_t ← γ √(1 - β2^t) min(1, t / T_warmup)            (warmup and Adam bias correction)
        z_{t+1} ← z_t - γ_t g_t / (√v_t + ε) - γ_t λ y_t
        c_{t+1} ← γ_t² / Σ_{i=1}^t γ_i²
        x_{t+1} ← (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}       (weighted iterate average)
    return x_T

As the reference stores it: the parameter holds y (in train mode) and `state['z']` holds z; x is
never stored. Substituting β1 x_t = y_t - (1 - β1) z_t into the box gives, per step t = k + 1::

    u_t ← g_t / (√(v_t / (1 - β2^t)) + ε) + λ y_t           (SGD: u_t ← g_t + λ y_t)
    y_{t+1} ← (1 - c_{t+1}) y_t + c_{t+1} z_t + γ_t (β1 (1 - c_{t+1}) - 1) u_t
    z_{t+1} ← z_t - γ_t u_t

with γ_t = γ min(1, t / T_warmup) and c_{t+1} = w_t / Σ_{i≤t} w_i, w_t = t^r · γ_max^p
(γ_max the largest γ_t so far, p = `weight_lr_power`). `eval()` moves the parameter to
x = y + (1 - 1/β1)(z - y) (what to evaluate and checkpoint); `train()` moves it back to
y = x + (1 - β1)(z - x). The runner must call them; with BatchNorm the running statistics were
collected at y, so they must be recomputed at x before evaluating (the package's caveat).

State: `z`, and for AdamW `exp_avg_sq` (v). Per group (as the reference keeps them): `k` (steps
taken), `weight_sum`, `lr_max`, `scheduled_lr`, `train_mode`.
Tensor hyperparameters: lr, betas (AdamW) / momentum (SGD), eps, weight_decay. Element-wise.
"""

import torch

from .base import (
    PseudocodeOptimizer,
    add_scaled_,
    check_range,
    is_zero,
    lerp_,
    with_scalar_tensors_squeezed,
    zeros,
)

DOC_DISCREPANCIES = [
    "ε: the box divides by √v_t + ε with the bias correction √(1 - β2^t) folded into γ_t; the code "
    "divides by √(v_t / (1 - β2^t)) + ε and leaves γ_t without it (ε is scaled differently).",
    "averaging weights: the box uses c_{t+1} = γ_t² / Σ γ_i² (γ_t with bias correction); the code uses "
    "w_t = t^r · γ_max^weight_lr_power with γ_max the largest warmed-up lr so far (no bias correction).",
    "the code stores y and z, never x; eval()/train() convert the parameter between y and x.",
]


class ScheduleFree(PseudocodeOptimizer):
    """The mechanism both variants share: the y/z step, the averaging weight and the mode switch.

    Subclasses give `momentum_of(group)` (β1 or momentum) and `direction(theta, g, state, group, t)`
    (u_t without the λ y_t term).
    """

    supports_complex = False

    def __init__(self, params, defaults, foreach=None):
        defaults = dict(defaults, k=0, train_mode=False, weight_sum=0.0, lr_max=-1.0, scheduled_lr=0.0)
        super().__init__(params, defaults, dict(foreach=foreach))

    def momentum_of(self, group):
        raise NotImplementedError

    def direction(self, theta, g, state, group, t):
        raise NotImplementedError

    @torch.no_grad()
    def eval(self):
        """Set each parameter to x, the averaged iterate (evaluate and checkpoint there)."""
        self._switch_mode(to_train=False)

    @torch.no_grad()
    def train(self):
        """Set each parameter back to y, where gradients are taken."""
        self._switch_mode(to_train=True)

    def _switch_mode(self, to_train: bool):
        for group in self.param_groups:
            if group["train_mode"] == to_train:
                continue
            β = self.momentum_of(group)
            for theta in group["params"]:
                z = self.state[theta].get("z")
                if z is not None:
                    # train: y ← x + (1 - β)(z - x);  eval: x ← y + (1 - 1/β)(z - y)
                    lerp_(theta, z.to(theta.device), 1 - β if to_train else 1 - 1 / β)
            group["train_mode"] = to_train

    @torch.no_grad()
    def step(self, closure=None):
        if not self.param_groups[0]["train_mode"]:
            raise RuntimeError("Optimizer was not in train mode when step is called. "
                               "Please insert .train() and .eval() calls on the optimizer.")
        return super().step(closure)

    def step_group(self, group):
        t = group["k"] + 1
        γ_t = group["lr"] * min(1.0, t / group["warmup_steps"]) if group["warmup_steps"] else group["lr"]
        group["scheduled_lr"] = γ_t
        group["lr_max"] = γ_max = _maximum(γ_t, group["lr_max"])          # γ_max ← max(γ_max, γ_t)
        w_t = t ** group["r"] * γ_max ** group["weight_lr_power"]        # w_t ← t^r γ_max^p
        group["weight_sum"] = group["weight_sum"] + w_t                  # Σ_{i≤t} w_i
        c = _ratio(w_t, group["weight_sum"])                             # c_{t+1} ← w_t / Σ w_i
        read = with_scalar_tensors_squeezed(group)
        for theta in group["params"]:
            if theta.grad is not None:
                state = self.state[theta]
                if not state:
                    state.update(self.init_state(theta, group))
                self.update_y_z(theta, theta.grad, state, read, t, γ_t, c)
        group["k"] = t

    def init_state(self, theta, group):
        return dict(z=theta.clone(memory_format=torch.preserve_format))

    def update_y_z(self, theta, g, state, group, t, γ_t, c):
        λ, β = group["weight_decay"], self.momentum_of(group)
        y, z = theta, state["z"]
        u = self.direction(y, g, state, group, t)
        if not is_zero(λ):
            u = add_scaled_(u, y, λ)                                 # u_t ← u_t + λ y_t
        lerp_(y, z, c)                                               # y ← (1 - c_{t+1}) y_t + c_{t+1} z_t
        add_scaled_(y, u, γ_t * (β * (1 - c) - 1))                   # y_{t+1} ← y + γ_t (β(1 - c_{t+1}) - 1) u_t
        add_scaled_(z, u, -γ_t)                                      # z_{t+1} ← z_t - γ_t u_t


class AdamWScheduleFree(ScheduleFree):
    def __init__(self, params, lr=0.0025, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, warmup_steps=0,
                 r=0.0, weight_lr_power=2.0, foreach=None):
        check_range(lr, "Invalid learning rate: {}", low=0.0)
        check_range(weight_decay, "Invalid weight_decay value: {}", low=0.0)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, r=r, warmup_steps=warmup_steps,
                                      weight_lr_power=weight_lr_power, weight_decay=weight_decay), foreach)

    def momentum_of(self, group):
        return group["betas"][0]

    def init_state(self, theta, group):
        return dict(super().init_state(theta, group), exp_avg_sq=zeros(theta))

    def direction(self, theta, g, state, group, t):
        β2, ε = group["betas"][1], group["eps"]
        v = state["exp_avg_sq"]
        lerp_(v, g * g, 1 - β2)                                      # v_t ← β2 v_{t-1} + (1 - β2) g_t²
        denominator = v.div(1 - β2 ** t).sqrt_().add_(ε)             # √(v_t / (1 - β2^t)) + ε
        return g / denominator                                       # u_t ← g_t / (√v̂_t + ε)


class SGDScheduleFree(ScheduleFree):
    def __init__(self, params, lr=1.0, momentum=0.9, weight_decay=0, warmup_steps=0, r=0.0,
                 weight_lr_power=2, foreach=None):
        check_range(lr, "Invalid learning rate: {}", low=0.0)
        check_range(weight_decay, "Invalid weight_decay value: {}", low=0.0)
        check_range(momentum, "Momentum must be between 0 and 1 exclusive: {}", low=0.0, high=1.0,
                    low_inclusive=False)
        super().__init__(params, dict(lr=lr, momentum=momentum, r=r, warmup_steps=warmup_steps,
                                      weight_lr_power=weight_lr_power, weight_decay=weight_decay), foreach)

    def momentum_of(self, group):
        return group["momentum"]

    def direction(self, theta, g, state, group, t):
        return g.clone()                                             # u_t ← g_t


def _maximum(a, b):
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return torch.maximum(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64))
    return max(a, b)


def _ratio(w, total):
    """w / total, 0 where total is 0 (every lr so far was 0), as the reference's ZeroDivisionError guard."""
    if isinstance(total, torch.Tensor):
        return torch.where(total != 0, w / torch.where(total != 0, total, 1.0), 0.0)
    return w / total if total else 0.0
