r"""L-BFGS, optionally with a strong-Wolfe line search, as `torch.optim.LBFGS`.

torch documents no pseudocode for L-BFGS; the algorithm below is torch's code, written with the
symbols of Nocedal & Wright, *Numerical Optimization* (2nd ed.), chapters 3 and 7. L-BFGS works
on all parameters at once: θ is every parameter flattened into one vector (a complex parameter
as its real view, real and imaginary parts interleaved), g = ∇f(θ) likewise, and the closure
re-evaluates f and its gradient. Hence one param group only, and `step(closure)` replaces the
per-parameter `update()` of the other optimizers.

One step (torch.optim.LBFGS.step)::

    input: lr, max_iter, max_eval, tolerance_grad, tolerance_change,
           m (history_size), line_search_fn
    kept between steps: k (n_iter), d, t, the memory {s_i, y_i, ρ_i}, γ (H_diag), g_prev, f_prev
    f ← f(θ), g ← ∇f(θ)                                    (one closure call)
    if ‖g‖_∞ ≤ tolerance_grad: return f
    for iteration = 1 to max_iter do
        k ← k + 1
        if k = 1:
            d ← -g;  memory ← ∅;  γ ← 1
        else:
            s_k ← t d;  y_k ← g - g_prev                    (the last step: s_k = θ_{k+1} - θ_k)
            if y_kᵀs_k > 1e-10:                             (curvature condition, else skip)
                if the memory holds m pairs: forget the oldest
                remember s_k, y_k, ρ_k ← 1 / y_kᵀs_k
                γ ← s_kᵀy_k / y_kᵀy_k                       (H_k⁰ = γ I, N&W eq. 7.20)
            d ← -H_k g                                      (two-loop recursion, below)
        g_prev ← g;  f_prev ← f
        t ← min(1, 1 / ‖g‖₁) lr  if k = 1  else  lr
        if gᵀd > -tolerance_change: stop                    (d is no descent direction)
        if line_search_fn = 'strong_wolfe':
            t, f, g ← strong-Wolfe line search from θ along d, starting at t   (below)
            θ ← θ + t d
        else:
            θ ← θ + t d
            if iteration < max_iter: f ← f(θ), g ← ∇f(θ)
        stop if iteration = max_iter, or max_eval closure calls were made in this step,
             or ‖g‖_∞ ≤ tolerance_grad, or ‖t d‖_∞ ≤ tolerance_change,
             or |f - f_prev| < tolerance_change
    return the f computed first in this step

Two-loop recursion (Nocedal & Wright, Algorithm 7.4), the memory holding i = k-m, ..., k-1::

    q ← ∇f_k                        torch: q ← -g  (the recursion is linear in q,
                                           so r comes out as d = -H_k ∇f_k directly)
    for i = k-1, k-2, ..., k-m do
        α_i ← ρ_i s_iᵀ q
        q ← q - α_i y_i
    end
    r ← H_k⁰ q                      (H_k⁰ = γ I)
    for i = k-m, k-m+1, ..., k-1 do
        β ← ρ_i y_iᵀ r
        r ← r + s_i (α_i - β)
    end
    stop with result H_k ∇f_k = r   torch: d = r

Strong-Wolfe line search (minFunc's, after Nocedal & Wright, Algorithms 3.5 and 3.6): find a
step t along d satisfying, with c1 = 1e-4 and c2 = 0.9,

    f(θ + t d) ≤ f(θ) + c1 t gᵀd                (sufficient decrease, "Armijo")
    |∇f(θ + t d)ᵀd| ≤ c2 |gᵀd|                  (strong curvature condition)

Bracketing: from t, extrapolate by cubic interpolation into [t + 0.01 (t - t_prev), 10 t] until
a step satisfies both (done), or an interval [t_prev, t] must contain one (f rose, or the slope
turned non-negative). Zoom: shrink that interval by cubic interpolation, moving a trial point
that falls within 0.1 × the interval's width of an end (twice running, or outside it) to that
distance from the end; stop when the interval is shorter than 1e-9 / ‖d‖_∞ (torch's line
search keeps its own tolerance_change = 1e-9, whatever the group's). Both phases together make
at most max_eval - (closure calls so far) evaluations. The result is the bracket's lowest point.

State (global, filed under the first parameter, as in torch): `func_evals` and `n_iter` (k,
counted over all steps), `d`, `t`, `old_stps` (the s_i), `old_dirs` (the y_i: torch's name),
`ro` (the ρ_i), `H_diag` (γ), `al` (the α_i, a list of history_size slots), `prev_flat_grad`
(g_prev), `prev_loss` (f_prev).
Tensor hyperparameters: none that broadcast (lr may be a 1-element tensor, as in torch). L-BFGS
takes dot products over all its parameters together, so independent trials need separate
optimizers, not just separate parameters.
"""

import torch

from .base import PseudocodeOptimizer, check_range, real_view

DOC_DISCREPANCIES = [
    "torch's docstring says LBFGS parameters 'must be real'; its code supports complex parameters "
    "through view_as_real (followed here)",
    "torch's docstring gives max_eval's default as max_iter * 1.25; its code uses "
    "max_iter * 5 // 4 (followed here)",
]


class LBFGS(PseudocodeOptimizer):
    # A PseudocodeOptimizer so that every optbench optimizer is one (isinstance checks, one
    # family). Its per-parameter update() plumbing does not fit L-BFGS, which needs the closure
    # and the whole parameter vector, so step() is overridden; torch's LBFGS takes none of the
    # implementation switches, so none are passed.

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7,
                 tolerance_change=1e-9, history_size=100, line_search_fn=None):
        if isinstance(lr, torch.Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        check_range(lr, "Invalid learning rate: {}", low=0.0)
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size,
                        line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")

    @torch.no_grad()
    def step(self, closure):
        """Perform one optimization step; `closure` re-evaluates the model and returns the loss."""
        closure = torch.enable_grad()(closure)
        group = self.param_groups[0]
        lr = group["lr"].squeeze() if isinstance(group["lr"], torch.Tensor) else group["lr"]
        max_iter, max_eval, m = group["max_iter"], group["max_eval"], group["history_size"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        line_search_fn = group["line_search_fn"]

        state = self.state[group["params"][0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = closure()
        f = float(orig_loss)                                # f ← f(θ)
        g = self._flat_grad()                               # g ← ∇f(θ)
        evals = 1
        state["func_evals"] += 1
        if g.abs().max() <= tolerance_grad:                 # ‖g‖_∞ ≤ tolerance_grad: optimal
            return orig_loss

        d, t, γ = state.get("d"), state.get("t"), state.get("H_diag")
        s, y, ρ = state.get("old_stps"), state.get("old_dirs"), state.get("ro")
        g_prev, f_prev = state.get("prev_flat_grad"), state.get("prev_loss")

        for iteration in range(1, max_iter + 1):
            state["n_iter"] += 1                            # k ← k + 1
            if state["n_iter"] == 1:
                d = -g                                      # d ← -g
                s, y, ρ = [], [], []                        # memory ← ∅
                γ = 1                                       # γ ← 1
            else:
                s_k = d.mul(t)                              # s_k ← t d
                y_k = g - g_prev                            # y_k ← g - g_prev
                ys = y_k.dot(s_k)
                if ys > 1e-10:                              # if y_kᵀs_k > 1e-10:
                    if len(y) == m:                         #   forget the oldest pair
                        s.pop(0), y.pop(0), ρ.pop(0)
                    s.append(s_k)                           #   remember s_k, y_k,
                    y.append(y_k)
                    ρ.append(1.0 / ys)                      #   ρ_k ← 1 / y_kᵀs_k
                    γ = ys / y_k.dot(y_k)                   #   γ ← s_kᵀy_k / y_kᵀy_k
                α = state.setdefault("al", [None] * m)
                d = two_loop_recursion(g, s, y, ρ, α, γ)    # d ← -H_k g
            g_prev, f_prev = g, f                           # g_prev ← g;  f_prev ← f

            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / g.abs().sum()) * lr      # t ← min(1, 1/‖g‖₁) lr
            else:
                t = lr                                      # t ← lr
            gtd = g.dot(d)
            if gtd > -tolerance_change:                     # gᵀd > -tolerance_change: stop
                break

            if line_search_fn is not None:
                if line_search_fn != "strong_wolfe":
                    raise RuntimeError("only 'strong_wolfe' is supported")
                θ = [p.clone() for p in group["params"]]

                def φ(t):                                   # f, ∇f at θ + t d; θ unchanged
                    return self._evaluate_along(closure, θ, t, d)  # noqa: B023 (called in this iteration only)

                f, g, t, ls_evals = strong_wolfe(φ, t, d, f, g, gtd, max_ls=max_eval - evals)
                self._move(t, d)                            # θ ← θ + t d
            else:
                self._move(t, d)                            # θ ← θ + t d
                ls_evals = 0
                if iteration != max_iter:                   # f ← f(θ), g ← ∇f(θ)
                    f = float(closure())
                    g = self._flat_grad()
                    ls_evals = 1
            evals += ls_evals
            state["func_evals"] += ls_evals

            if iteration == max_iter or evals >= max_eval:
                break
            if g.abs().max() <= tolerance_grad:             # ‖g‖_∞ ≤ tolerance_grad
                break
            if d.mul(t).abs().max() <= tolerance_change:    # ‖t d‖_∞ ≤ tolerance_change
                break
            if abs(f - f_prev) < tolerance_change:          # |f - f_prev| < tolerance_change
                break

        state.update(d=d, t=t, old_dirs=y, old_stps=s, ro=ρ, H_diag=γ,
                     prev_flat_grad=g_prev, prev_loss=f_prev)
        return orig_loss

    def _flat_grad(self):
        """g: every parameter's gradient in one vector (zeros where none, complex as real pairs)."""
        grads = []
        for p in self.param_groups[0]["params"]:
            grad = torch.zeros_like(p) if p.grad is None else p.grad
            grad = grad.to_dense() if grad.is_sparse else grad
            grads.append(real_view(grad).reshape(-1))
        return torch.cat(grads)

    def _move(self, t, d):
        """θ ← θ + t d, the flat d cut back into the parameters' (real-view) shapes.

        `alpha=t` rounds θ + t·d once, exactly as torch does (see two_loop_recursion).
        """
        offset = 0
        for p in self.param_groups[0]["params"]:
            theta = real_view(p)
            theta.add_(d[offset:offset + theta.numel()].view_as(theta), alpha=t)
            offset += theta.numel()

    def _evaluate_along(self, closure, θ, t, d):
        """(f, g) at θ + t d, the parameters restored to θ afterwards."""
        self._move(t, d)
        f = float(closure())
        g = self._flat_grad()
        for p, theta in zip(self.param_groups[0]["params"], θ, strict=False):
            p.copy_(theta)
        return f, g


def two_loop_recursion(g, s, y, ρ, α, γ):
    """d = -H_k g, H_k the L-BFGS inverse Hessian of the memory s, y, ρ over H_k⁰ = γ I.

    Nocedal & Wright Algorithm 7.4, started from q = -g as in torch; α (torch's `al`) is the
    caller's list of slots for the α_i, filled in place. The `add_(x, alpha=a)` form (a + α·x
    rounded once, as torch computes it) is kept on purpose: written `q - α_i * y_i` it rounds
    twice, and over a 100-pair memory those last bits grow to ~1e-5 relative (measured).
    """
    q = -g                                                  # q ← -g
    for i in reversed(range(len(s))):                       # for i = k-1, ..., k-m:
        α[i] = ρ[i] * s[i].dot(q)                           #   α_i ← ρ_i s_iᵀ q
        q.add_(y[i], alpha=-α[i])                           #   q ← q - α_i y_i
    r = γ * q                                               # r ← H_k⁰ q
    for i in range(len(s)):                                 # for i = k-m, ..., k-1:
        β = ρ[i] * y[i].dot(r)                              #   β ← ρ_i y_iᵀ r
        r.add_(s[i], alpha=α[i] - β)                        #   r ← r + s_i (α_i - β)
    return r                                                # d ← r


def cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """Minimiser of the cubic through (x1, f1), (x2, f2) with slopes g1, g2 (N&W eq. 3.59).

    Clamped to `bounds` (default: the interval between x1 and x2); the bounds' midpoint when
    the cubic has no minimiser.
    """
    lo, hi = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)                # d1 ← g1 + g2 - 3 (f1-f2)/(x1-x2)
    d2_square = d1 ** 2 - g1 * g2
    if not d2_square >= 0:                                  # (NaN included, as in torch)
        return (lo + hi) / 2.0
    d2 = d2_square.sqrt()                                   # d2 ← √(d1² - g1 g2)
    # x ← x2 - (x2 - x1) (g2 + d2 - d1) / (g2 - g1 + 2 d2), x2 being the right end
    if x1 <= x2:
        x = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        x = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(x, lo), hi)


def strong_wolfe(φ, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """A step t along d satisfying the strong Wolfe conditions, by bracketing then zooming.

    φ(t) returns (f, g) at θ + t d; f, g and gtd = gᵀd are at t = 0. Returns f, g and t at the
    bracket's lowest point, and the number of φ evaluations. A point is [t, f, g, gᵀd] along d.
    """
    def armijo_fails(t, f_t):                               # not f(θ + t d) ≤ f(θ) + c1 t gᵀd
        return f_t > f + c1 * t * gtd

    def curvature_holds(gtd_t):                             # |∇f(θ + t d)ᵀd| ≤ c2 |gᵀd|
        return abs(gtd_t) <= -c2 * gtd

    def evaluate(t):
        f_t, g_t = φ(t)
        return [t, f_t, g_t, g_t.dot(d)]

    d_norm = d.abs().max()
    prev, new = [0, f, g, gtd], evaluate(t)
    evals, ls_iter = 1, 0
    done = False
    while ls_iter < max_ls:                                 # bracketing (N&W Algorithm 3.5)
        if armijo_fails(new[0], new[1]) or (ls_iter > 1 and new[1] >= prev[1]):
            bracket = [prev, new]                           # f rose: a minimiser is in between
            break
        if curvature_holds(new[3]):
            bracket, done = [new], True                     # both conditions hold at t
            break
        if new[3] >= 0:
            bracket = [prev, new]                           # slope turned: one is in between
            break
        # Extrapolate: the cubic's minimiser, kept within [t + 0.01 (t - t_prev), 10 t].
        (t_prev, f_prev, _, gtd_prev), (t, f_t, _, gtd_t) = prev, new
        t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_t, gtd_t,
                              bounds=(t + 0.01 * (t - t_prev), t * 10))
        prev, new = new, evaluate(t)
        evals, ls_iter = evals + 1, ls_iter + 1
    if ls_iter == max_ls:
        bracket = [[0, f, g, gtd], new]                     # out of evaluations: best of 0, t

    low, high = (0, 1) if bracket[0][1] <= bracket[-1][1] else (1, 0)
    insufficient_progress = False
    while not done and ls_iter < max_ls:                    # zoom (N&W Algorithm 3.6)
        (a, f_a, _, gtd_a), (b, f_b, _, gtd_b) = bracket
        if abs(b - a) * d_norm < tolerance_change:          # the bracket is too small to matter
            break
        t = cubic_interpolate(a, f_a, gtd_a, b, f_b, gtd_b)
        # Keep t 0.1 × the bracket's width inside it when it falls that close to an end twice
        # running, or on or outside an end.
        lo, hi = min(a, b), max(a, b)
        eps = 0.1 * (hi - lo)
        if min(hi - t, t - lo) < eps:
            if insufficient_progress or t >= hi or t <= lo:
                t = hi - eps if abs(t - hi) < abs(t - lo) else lo + eps
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False
        new = evaluate(t)
        evals, ls_iter = evals + 1, ls_iter + 1
        if armijo_fails(new[0], new[1]) or new[1] >= bracket[low][1]:
            bracket[high] = new                             # t is the new high end
            low, high = (0, 1) if bracket[0][1] <= bracket[1][1] else (1, 0)
        else:
            if curvature_holds(new[3]):
                done = True                                 # both conditions hold at t
            elif new[3] * (bracket[high][0] - bracket[low][0]) >= 0:
                bracket[high] = bracket[low]                # the old low end becomes the high end
            bracket[low] = new                              # t is the new low end

    t, f_t, g_t, _ = bracket[low]
    return f_t, g_t, t, evals
