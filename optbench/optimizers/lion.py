r"""Lion (EvoLved Sign Momentum), as `lion_pytorch.Lion` (lion-pytorch, the paper authors' port).

Pseudocode (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2)::

    given: β1, β2, λ (weight decay), η (lr)
    initialize: θ_0, m_0 ← 0
    while θ_t not converged do
        g_t ← ∇_θ f(θ_{t-1})
        c_t ← β1 m_{t-1} + (1 - β1) g_t            (update model parameters)
        θ_t ← θ_{t-1} - η_t (sign(c_t) + λ θ_{t-1})
        m_t ← β2 m_{t-1} + (1 - β2) g_t            (update EMA of g_t)
    end while

The reference splits the θ line in two, decay first: θ ← θ - ηλθ, then θ ← θ - η sign(c_t)
(the same numbers, since both read θ_{t-1}). With `decoupled_weight_decay` it divides λ by the
learning rate the optimizer was *constructed* with, η_0, so the decay per step is ηλ/η_0 (= λ at
η = η_0, whatever the schedule does to η later).

State: `exp_avg` (m). No step counter, as in the reference.
Tensor hyperparameters: lr, betas, weight_decay. Element-wise (sign is per coordinate).
"""

from .base import PseudocodeOptimizer, add_scaled_, check_range, is_zero, lerp_, scale_, zeros

DOC_DISCREPANCIES = [
    "decoupled_weight_decay: not in the paper; the reference divides λ by the constructor's lr η_0 "
    "(not the group's current lr), so θ ← θ - (η/η_0)λθ.",
    "the paper writes one θ line, θ_t ← θ_{t-1} - η(sign(c_t) + λθ_{t-1}); the reference applies the "
    "decay first, then the sign step (identical up to rounding).",
]


class Lion(PseudocodeOptimizer):
    supports_complex = False   # sign() of a complex number is not the paper's sign

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, decoupled_weight_decay=False):
        check_range(lr, "Invalid learning rate: {}", low=0.0, low_inclusive=False)
        check_range(betas[0], "Invalid beta parameter at index 0: {}", low=0.0, high=1.0, high_inclusive=True)
        check_range(betas[1], "Invalid beta parameter at index 1: {}", low=0.0, high=1.0, high_inclusive=True)
        defaults = dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)
        self.initial_lr = lr     # η_0, the reference's `_init_lr`

    def init_state(self, theta, group):
        return dict(exp_avg=zeros(theta))

    def update(self, theta, g, state, group):
        η, (β1, β2), λ = group["lr"], group["betas"], group["weight_decay"]
        m = state["exp_avg"]
        if group["decoupled_weight_decay"]:
            λ = λ / self.initial_lr                     # λ ← λ / η_0 (reference only)
        if not is_zero(λ):
            scale_(theta, 1 - η * λ)                       # θ ← θ_{t-1} - η λ θ_{t-1}
        c = lerp_(m.clone(), g, 1 - β1)                 # c_t ← β1 m_{t-1} + (1 - β1) g_t
        add_scaled_(theta, c.sign_(), -η)               # θ_t ← θ - η sign(c_t)
        lerp_(m, g, 1 - β2)                             # m_t ← β2 m_{t-1} + (1 - β2) g_t
