"""Why the fast path does not use torch.compile: compile our readable Adam update and time it.

    python benchmarks/compiled_update.py            # ResNet-18's 11.7 M parameters as one buffer
    python benchmarks/compiled_update.py --experiment kernels   # one compiled kernel per family

Compiles `Adam.update` (the readable code, unchanged) with torch.compile(dynamic=True) on one flat
buffer, and reports the first call (compilation; a second run of this script hits inductor's cache),
the cost of a learning-rate change (a guard check or a recompile), and the steady-state step,
round-robin against the same update run eagerly on the whole buffer, on 2^20-element slices (the
fast path), and torch's fused Adam on the same buffer.

`--experiment kernels`: Adam, SGD momentum and RMSprop each as one small function over the flat
buffers with the per-step numbers passed as 0-d tensors (compiled with dynamic=False,
fullgraph=True: no recompiles across steps and lr changes, checked with error_on_recompile), against
the fast path, torch fused and foreach at ResNet-18 shapes; compile time with a cold and a warm
inductor cache; and equality with torch.optim in float32 and float64 (benchmarks/README.md).

`--experiment products`: the product classes fast(cls, compiled=True).step against fast(cls).step
(the default fast path), torch foreach and fused (where torch has one) at ResNet-18 shapes, for the
variants in PRODUCTS (RMSprop plain, centered, momentum, both; Adagrad; NAdam; Adam for reference).
Equality with torch.optim for every flag combination is tests/test_fast_compiled.py.
"""

from __future__ import annotations

import time

import torch

from optbench.optimizers import Adam

from step_cost import resnet18_shapes, time_calls, time_once


def main():
    numel = sum(int(torch.tensor(s).prod()) for s in resnet18_shapes())
    generator = torch.Generator().manual_seed(0)
    theta, g = torch.randn(numel, generator=generator), torch.randn(numel, generator=generator) * 1e-2
    hparams = dict(lr=0.05, betas=(0.8, 0.95))
    optimizer = Adam([torch.zeros(1)], **hparams)
    group = optimizer.param_groups[0]
    states = {label: optimizer.init_state(theta, group) for label in ("eager", "sliced", "compiled")}
    compiled = torch.compile(Adam.update, dynamic=True)

    first = time_once(lambda: compiled(optimizer, theta, g, states["compiled"], group), "cpu")
    group["lr"] = 0.04
    lr_change = time_once(lambda: compiled(optimizer, theta, g, states["compiled"], group), "cpu")

    def sliced():
        chunk = 1 << 20
        for start in range(0, numel, chunk):
            state = {k: v[start:start + chunk] if v.dim() else v.clone() for k, v in states["sliced"].items()}
            optimizer.update(theta[start:start + chunk], g[start:start + chunk], state, group)
        states["sliced"]["step"] += 1

    p = theta.clone().requires_grad_()
    p.grad = g.clone()
    fused = torch.optim.Adam([p], **hparams, fused=True)
    samples = time_calls({
        "readable update, eager, whole buffer": lambda: optimizer.update(theta, g, states["eager"], group),
        "readable update, eager, 2^20-element slices (fast path)": sliced,
        "readable update, torch.compile": lambda: compiled(optimizer, theta, g, states["compiled"], group),
        "torch fused Adam, same buffer": fused.step,
    }, "cpu", 20)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {numel / 1e6:.2f} M parameters")
    print(f"first compiled call (compilation): {first:.1f} s; after an lr change: {lr_change:.2f} s")
    for label, seconds in samples.items():
        print(f"{label}: {min(seconds) * 1e3:.2f} ms")


# ---- Experiment 2: one compiled kernel per algorithm, per-step scalars folded in Python ----------
#
# The kernels take the flat buffers and 0-d tensors holding the per-step numbers (bias corrections
# folded into the step size and denominator, computed in Python from the readable formulas), so the
# graph is the same at every step and every learning rate: compiled once, no recompiles.

def adam_kernel(theta, g, m, v, step_size, bias_correction2_sqrt, one_minus_beta1, beta2,
                one_minus_beta2, eps, weight_decay):
    g = g + weight_decay * theta                        # g_t ← g_t + λ θ_{t-1}
    m.lerp_(g, one_minus_beta1)                         # m_t ← β1 m_{t-1} + (1 - β1) g_t
    v.mul_(beta2).add_(one_minus_beta2 * g * g)         # v_t ← β2 v_{t-1} + (1 - β2) g_t²
    denominator = v.sqrt() / bias_correction2_sqrt + eps   # √v̂_t + ε
    theta.add_(step_size * m / denominator)             # θ_t ← θ_{t-1} - γ m̂_t / (√v̂_t + ε)


def sgd_momentum_kernel(theta, g, b, minus_lr, momentum, one_minus_dampening, weight_decay):
    g = g + weight_decay * theta                        # g_t ← g_t + λ θ_{t-1}
    b.mul_(momentum).add_(one_minus_dampening * g)      # b_t ← μ b_{t-1} + (1 - τ) g_t  (t = 1: μ=0, 1-τ=1)
    theta.add_(minus_lr * b)                            # θ_t ← θ_{t-1} - γ b_t


def rmsprop_kernel(theta, g, v, minus_lr, alpha, one_minus_alpha, eps, weight_decay):
    g = g + weight_decay * theta                        # g_t ← g_t + λ θ_{t-1}
    v.mul_(alpha).add_(one_minus_alpha * g * g)         # v_t ← α v_{t-1} + (1 - α) g_t²
    theta.add_(minus_lr * g / (v.sqrt() + eps))         # θ_t ← θ_{t-1} - γ g_t / (√v_t + ε)


def scalars(dtype, **numbers):
    return {k: torch.tensor(float(x), dtype=dtype) for k, x in numbers.items()}


class CompiledAdam:
    def __init__(self, kernel, theta, g, lr, betas, eps, weight_decay=0.0):
        self.kernel, self.theta, self.g = kernel, theta, g
        self.m, self.v = torch.zeros_like(theta), torch.zeros_like(theta)
        self.lr, self.betas, self.eps, self.wd, self.t = lr, betas, eps, weight_decay, 0

    def step(self):
        self.t += 1
        (β1, β2), t, γ = self.betas, self.t, self.lr
        s = scalars(self.theta.dtype, step_size=-γ / (1 - β1 ** t), bias_correction2_sqrt=(1 - β2 ** t) ** 0.5,
                    one_minus_beta1=1 - β1, beta2=β2, one_minus_beta2=1 - β2, eps=self.eps,
                    weight_decay=self.wd)
        self.kernel(self.theta, self.g, self.m, self.v, **s)


class CompiledSGD:
    def __init__(self, kernel, theta, g, lr, momentum, dampening=0.0, weight_decay=0.0):
        self.kernel, self.theta, self.g, self.b = kernel, theta, g, torch.zeros_like(theta)
        self.lr, self.mu, self.tau, self.wd, self.t = lr, momentum, dampening, weight_decay, 0

    def step(self):
        self.t += 1
        first = self.t == 1                             # b_1 ← g_1
        s = scalars(self.theta.dtype, minus_lr=-self.lr, momentum=0.0 if first else self.mu,
                    one_minus_dampening=1.0 if first else 1 - self.tau, weight_decay=self.wd)
        self.kernel(self.theta, self.g, self.b, **s)


class CompiledRMSprop:
    def __init__(self, kernel, theta, g, lr, alpha, eps, weight_decay=0.0):
        self.kernel, self.theta, self.g, self.v = kernel, theta, g, torch.zeros_like(theta)
        self.lr, self.alpha, self.eps, self.wd = lr, alpha, eps, weight_decay

    def step(self):
        s = scalars(self.theta.dtype, minus_lr=-self.lr, alpha=self.alpha, one_minus_alpha=1 - self.alpha,
                    eps=self.eps, weight_decay=self.wd)
        self.kernel(self.theta, self.g, self.v, **s)


def compile_kernel(function):
    return torch.compile(function, backend="inductor", dynamic=False, fullgraph=True)


FAMILIES = {
    # name: (kernel, our wrapper, its kwargs, torch class, torch kwargs)
    "adam": (adam_kernel, CompiledAdam, {"lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-8, "weight_decay": 0.0},
             torch.optim.Adam, {"lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-8, "weight_decay": 0.0}),
    "sgd": (sgd_momentum_kernel, CompiledSGD, {"lr": 0.05, "momentum": 0.9},
            torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    "rmsprop": (rmsprop_kernel, CompiledRMSprop, {"lr": 0.01, "alpha": 0.9, "eps": 1e-8},
                torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.9, "eps": 1e-8}),
}


def check_equal(name, kernel, dtype, steps=6, numel=100_003):
    """Compiled kernel against torch.optim (for-loop) on a few steps, with an lr change midway:
    the worst of optbench.verify's normwise max|a - b| / max|b| over parameters and state."""
    from optbench.verify import relative_deviation

    _, wrapper, kwargs, theirs, their_kwargs = FAMILIES[name]
    generator = torch.Generator().manual_seed(1)
    theta = torch.randn(numel, generator=generator, dtype=dtype)
    p = theta.clone().requires_grad_()
    g = torch.empty_like(theta)
    ours = wrapper(kernel, theta, g, **kwargs)
    reference = theirs([p], **their_kwargs, foreach=False)
    worst = 0.0
    for step in range(steps):
        if step == 3:
            ours.lr = reference.param_groups[0]["lr"] = kwargs["lr"] * 0.5
        grad = torch.randn(numel, generator=generator, dtype=dtype) * 1e-2
        g.copy_(grad)
        p.grad = grad.clone()
        ours.step()
        reference.step()
        state = reference.state[p]
        pairs = [(theta, p.detach())] + [(mine, state[key]) for mine, key in STATE_KEYS[name](ours)]
        worst = max([worst] + [relative_deviation(a, b) for a, b in pairs])
    return worst


STATE_KEYS = {"adam": lambda o: [(o.m, "exp_avg"), (o.v, "exp_avg_sq")],
              "sgd": lambda o: [(o.b, "momentum_buffer")],
              "rmsprop": lambda o: [(o.v, "square_avg")]}


def kernels(families, repeats):
    import os
    import tempfile

    from step_cost import make_params
    from torch._dynamo.utils import counters

    from optbench.optimizers import fast, registry

    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-cold-")
    shapes = resnet18_shapes()
    numel = sum(int(torch.tensor(s).prod()) for s in shapes)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {numel / 1e6:.2f} M parameters, "
          f"inductor cache {os.environ['TORCHINDUCTOR_CACHE_DIR']} (empty at start)")
    for name in families:
        kernel_function, wrapper, kwargs, theirs, their_kwargs = FAMILIES[name]
        generator = torch.Generator().manual_seed(0)
        theta, g = torch.randn(numel, generator=generator), torch.randn(numel, generator=generator) * 1e-2

        torch._dynamo.reset()
        counters.clear()
        kernel = compile_kernel(kernel_function)
        compiled = wrapper(kernel, theta, g, **kwargs)
        cold = time_once(compiled.step, "cpu")
        torch._dynamo.reset()                               # in-memory caches gone, on-disk cache warm
        kernel = compile_kernel(kernel_function)
        compiled.kernel = kernel
        warm = time_once(compiled.step, "cpu")
        compiled.lr *= 0.5                                  # an lr change must not recompile
        torch._dynamo.config.error_on_recompile = True
        lr_change = time_once(compiled.step, "cpu")

        fast_optimizer = fast(registry.ALGORITHMS[name].ours)(make_params(shapes, "cpu", False), **their_kwargs)
        fast_optimizer.step()
        fused_optimizer = None
        steps = {"compiled kernel": compiled.step, "fast path (eager slices)": fast_optimizer.step}
        if name == "adam":   # the opt-in product class, fast(Adam, compiled=True): Python step + kernel
            product = fast(registry.ALGORITHMS[name].ours, compiled=True)(make_params(shapes, "cpu", False),
                                                                           **their_kwargs)
            product_first = time_once(product.step, "cpu")
            product_second = time_once(product.step, "cpu")
            steps["fast(Adam, compiled=True).step"] = product.step
        try:
            fused_optimizer = theirs(make_params(shapes, "cpu", False), **their_kwargs, fused=True)
            fused_optimizer.step()
            steps["torch fused"] = fused_optimizer.step
        except (RuntimeError, ValueError, TypeError):   # no fused kernel for this algorithm
            pass
        steps["torch foreach"] = theirs(make_params(shapes, "cpu", False), **their_kwargs, foreach=True).step
        samples = time_calls(steps, "cpu", repeats)
        torch._dynamo.config.error_on_recompile = False
        graphs = counters["stats"]["unique_graphs"]   # cold + warm compile; error_on_recompile held after
        f32 = check_equal(name, kernel, torch.float32)
        f64 = check_equal(name, kernel, torch.float64)
        print(f"\n{name}: first call, cold cache {cold:.1f} s, warm cache {warm:.2f} s; step after lr change "
              f"{lr_change * 1e3:.1f} ms; graphs compiled: {graphs} (cold + warm; then no recompile "
              f"over {repeats + 4} steps incl. the lr change)")
        for label, seconds in samples.items():
            print(f"  {label}: {min(seconds) * 1e3:.2f} ms (median {sorted(seconds)[len(seconds) // 2] * 1e3:.2f})")
        best = {k: min(v) for k, v in samples.items()}
        if name == "adam":
            print(f"  fast(Adam, compiled=True): step 1 (gather, readable update) {product_first * 1e3:.0f} ms, "
                  f"step 2 (its own graph, warm cache) {product_second:.2f} s")
        print(f"  fast / compiled = {best['fast path (eager slices)'] / best['compiled kernel']:.2f}x")
        print(f"  max relative error vs torch.optim (6 steps, lr halved at 4): float32 {f32:.1e}, float64 {f64:.1e}")
        torch._dynamo.reset()

PRODUCTS = {
    # label: (algorithm, hyperparameters), the same for ours and torch's
    "adam": ("adam", dict(lr=0.05, betas=(0.8, 0.95))),
    "rmsprop": ("rmsprop", dict(lr=0.01, alpha=0.9)),
    "rmsprop centered": ("rmsprop", dict(lr=0.01, alpha=0.9, centered=True)),
    "rmsprop momentum": ("rmsprop", dict(lr=0.01, alpha=0.9, momentum=0.9)),
    "rmsprop centered+momentum": ("rmsprop", dict(lr=0.01, alpha=0.9, centered=True, momentum=0.9)),
    "adagrad": ("adagrad", dict(lr=0.1)),
    "nadam": ("nadam", dict(lr=0.05, betas=(0.8, 0.95))),
}


def products(labels, repeats):
    from step_cost import make_params

    from optbench.optimizers import fast, registry

    shapes = resnet18_shapes()
    numel = sum(int(torch.tensor(s).prod()) for s in shapes)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {numel / 1e6:.2f} M parameters")
    for label in labels:
        name, hparams = PRODUCTS[label]
        algorithm = registry.ALGORITHMS[name]
        compiled = fast(algorithm.ours, compiled=True)(make_params(shapes, "cpu", False), **hparams)
        compiled.step()                                     # step 1: gather, readable update
        first = time_once(compiled.step, "cpu")             # step 2: compiles (or inductor's cache)
        default = fast(algorithm.ours)(make_params(shapes, "cpu", False), **hparams)
        steps = {"fast(cls, compiled=True)": compiled.step, "fast(cls) (eager slices)": default.step}
        try:
            steps["torch fused"] = algorithm.theirs(make_params(shapes, "cpu", False), **hparams, fused=True).step
            steps["torch fused"]()
        except (RuntimeError, ValueError, TypeError):     # no fused kernel for this algorithm
            steps.pop("torch fused", None)
        steps["torch foreach"] = algorithm.theirs(make_params(shapes, "cpu", False), **hparams, foreach=True).step
        samples = time_calls(steps, "cpu", repeats)
        best = {k: min(v) for k, v in samples.items()}
        print(f"\n{label}: first compiled step {first:.1f} s; compiled group steps "
              f"{compiled.compiled_group_steps}")
        for step_label, seconds in samples.items():
            print(f"  {step_label}: {min(seconds) * 1e3:.2f} ms "
                  f"(median {sorted(seconds)[len(seconds) // 2] * 1e3:.2f})")
        print(f"  fast / compiled = {best['fast(cls) (eager slices)'] / best['fast(cls, compiled=True)']:.2f}x"
              f" (median {sorted(samples['fast(cls) (eager slices)'])[repeats // 2] / sorted(samples['fast(cls, compiled=True)'])[repeats // 2]:.2f}x)")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--experiment", choices=["readable", "kernels", "products"], default="readable",
                        help="readable: compile Adam.update (below); kernels: one compiled kernel per family; "
                             "products: fast(cls, compiled=True) against fast(cls)")
    parser.add_argument("--families", default="adam,sgd,rmsprop")
    parser.add_argument("--products", default=",".join(PRODUCTS))
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    start = time.perf_counter()
    if args.experiment == "readable":
        main()
    elif args.experiment == "kernels":
        kernels(args.families.split(","), args.repeats)
    else:
        products(args.products.split(","), args.repeats)
    print(f"total {time.perf_counter() - start:.0f} s")
