"""Source text of small optimizer classes that tests write into a user's file (`file.py:Class`), one
copy for every test that needs them."""

# sign descent: x <- x - lr * sign(g), element-wise
SIGN_SGD = """import torch


class SignSGD(torch.optim.Optimizer):
    def __init__(self, params, lr=0.01):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad.sign(), alpha=-group["lr"])
"""

# plain gradient descent, x <- x - lr * g: a base for classes that break in one way each
PLAIN_SGD = """import torch


class Plain(torch.optim.Optimizer):
    def __init__(self, params, lr=0.01):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.sub_(group["lr"] * p.grad)
"""
