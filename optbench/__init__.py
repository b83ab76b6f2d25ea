"""optbench: see how gradient-based optimizers behave, exactly as torch.optim runs them."""

__version__ = "0.1.0"
