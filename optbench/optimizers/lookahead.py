r"""Lookahead, as `pytorch_optimizer.Lookahead`: a wrapper that any inner optimizer steps k times forward.

Pseudocode (Zhang et al. 2019, "Lookahead Optimizer: k steps forward, 1 step back", Algorithm 1)::

    require: initial parameters φ_0, objective L, synchronisation period k, slow step size α, optimizer A
    for t = 1, 2, ... do
        θ_{t,0} ← φ_{t-1}                                   (synchronise)
        for i = 1, 2, ..., k do
            θ_{t,i} ← θ_{t,i-1} + A(L, θ_{t,i-1}, d)        (inner optimizer step on a minibatch d)
        end for
        φ_t ← φ_{t-1} + α (θ_{t,k} - φ_{t-1})               (outer update)
    end for
    return φ

The parameter holds the fast weights θ; `state['slow_params']` holds φ. Every `step()` is one inner
step; each group counts them in `group['counter']` and at k does the outer update and synchronises
θ ← φ_t. The reference's `pullback_momentum` (not in the paper) also treats the inner optimizer's
`momentum_buffer` at that moment: 'reset' zeroes it, 'pullback' moves it like the weights, towards a
slow copy `state['slow_momentum']`; 'none' keeps it.

`state_dict()` has the reference's layout: {'lookahead_state': {(group, index): state}, 'base_optimizer':
the inner optimizer's state_dict}. Tensor hyperparameters: α (and the inner optimizer's own).
"""

from collections import OrderedDict, defaultdict

import torch

from .base import check_range, lerp_, state_with_attributes

DOC_DISCREPANCIES = [
    "pullback_momentum ('reset' / 'pullback') is the reference's addition; the paper keeps the inner "
    "optimizer's state across the outer update ('none').",
    "the paper synchronises θ ← φ at the start of each outer loop; the code does it right after the outer "
    "update (the same sequence of values).",
]

PULLBACK_MOMENTUM = ("none", "reset", "pullback")


class Lookahead(torch.optim.Optimizer):
    def __init__(self, optimizer, k=5, alpha=0.5, pullback_momentum="none", **kwargs):
        if not k > 0:
            raise ValueError(f"Invalid k: {k}")
        check_range(alpha, "Invalid alpha: {}", low=0.0, high=1.0, high_inclusive=True)
        if pullback_momentum not in PULLBACK_MOMENTUM:
            raise ValueError(f"pullback_momentum must be one of {PULLBACK_MOMENTUM}, got {pullback_momentum!r}")
        if not isinstance(optimizer, torch.optim.Optimizer):   # a class, built on `params` as the reference does
            if "params" not in kwargs:
                raise ValueError("need to pass `params` when you pass an optimizer class")
            optimizer = optimizer(kwargs.pop("params"), **kwargs)
        self.optimizer = optimizer
        self.k, self.alpha, self.pullback_momentum = k, alpha, pullback_momentum
        # The part of torch.optim.Optimizer's set-up the lr schedulers rely on; the groups stay the inner's.
        self._optimizer_step_pre_hooks, self._optimizer_step_post_hooks = OrderedDict(), OrderedDict()
        self._patch_step_function()
        self.defaults = {"lookahead_alpha": alpha, "lookahead_k": k,
                         "lookahead_pullback_momentum": pullback_momentum, **optimizer.defaults}
        self.state = defaultdict(dict)
        for group in self.param_groups:
            self._init_group(group)

    def _init_group(self, group):
        group.setdefault("counter", 0)
        for theta in group["params"]:
            state = self.state[theta]
            if "slow_params" not in state:
                state["slow_params"] = theta.detach().clone()              # φ_0 ← θ_0
                if self.pullback_momentum == "pullback":
                    state["slow_momentum"] = torch.zeros_like(theta)

    @property
    def param_groups(self):
        return self.optimizer.param_groups     # one list, even after the inner optimizer loads a state_dict

    __getstate__ = state_with_attributes   # the inner optimizer and k, alpha live outside param_groups

    def add_param_group(self, param_group):
        self.optimizer.add_param_group(param_group)
        self._init_group(self.param_groups[-1])

    def zero_grad(self, set_to_none: bool = True):
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self, closure=None):
        loss = self.optimizer.step(closure)                                # θ_{t,i} ← θ_{t,i-1} + A(...)
        for group in self.param_groups:
            group["counter"] += 1
            if group["counter"] >= self.k:                                 # i = k: the outer update
                group["counter"] = 0
                self._outer_update(group)
        return loss

    @torch.no_grad()
    def _outer_update(self, group):
        α = self.alpha
        for theta in (theta for theta in group["params"] if theta.grad is not None):
            state = self.state[theta]
            φ = state["slow_params"]
            lerp_(theta, φ, 1 - α)                                         # φ_t ← φ_{t-1} + α(θ_{t,k} - φ_{t-1})
            φ.copy_(theta)                                                 # θ_{t+1,0} ← φ_t
            if self.pullback_momentum == "pullback":
                buffer = self.optimizer.state[theta].setdefault("momentum_buffer", torch.zeros_like(theta))
                lerp_(buffer, state["slow_momentum"], 1 - α)                # same outer update for the momentum
                state["slow_momentum"].copy_(buffer)
            elif self.pullback_momentum == "reset":
                self.optimizer.state[theta]["momentum_buffer"] = torch.zeros_like(theta)

    @torch.no_grad()
    def backup_and_load_cache(self):
        """Evaluate at the slow weights: θ saved in `state['backup_params']`, φ loaded into the
        parameters (the reference's method, and the paper's code's)."""
        for group in self.param_groups:
            for theta in group["params"]:
                state = self.state[theta]
                state["backup_params"] = theta.detach().clone()
                theta.copy_(state["slow_params"])

    @torch.no_grad()
    def clear_and_load_backup(self):
        """Back to training after `backup_and_load_cache`: θ restored, its backup dropped."""
        for group in self.param_groups:
            for theta in group["params"]:
                theta.copy_(self.state[theta].pop("backup_params"))

    def state_dict(self):
        lookahead_state = {(group_index, index): dict(self.state[theta])
                           for group_index, group in enumerate(self.param_groups)
                           for index, theta in enumerate(group["params"]) if theta in self.state}
        return {"lookahead_state": lookahead_state, "base_optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state_dict):
        saved = state_dict["lookahead_state"]
        restored = {}
        for group_index, group in enumerate(self.param_groups):
            for index, theta in enumerate(group["params"]):
                if (group_index, index) in saved:
                    restored[theta] = {key: value.to(device=theta.device, dtype=theta.dtype).clone()
                                       if isinstance(value, torch.Tensor) else value
                                       for key, value in saved[(group_index, index)].items()}
        if len(restored) != len(saved) or len(restored) != sum(len(g["params"]) for g in self.param_groups):
            raise ValueError("lookahead state does not match the current parameters")
        self.optimizer.load_state_dict(state_dict["base_optimizer"])
        self.state = defaultdict(dict, restored)


def over_inner(wrapper: type, inner: type, params, k=5, alpha=0.5, pullback_momentum="none", **inner_hparams):
    """`wrapper(inner(params, **inner_hparams), k, alpha, pullback_momentum)`: a Lookahead built from
    parameters, as optbench's runners and the certificate construct every optimizer."""
    return wrapper(inner(params, **inner_hparams), k=k, alpha=alpha, pullback_momentum=pullback_momentum)
