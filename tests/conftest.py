"""Suite-wide settings: one torch thread per test process.

`pytest -n 2` already runs two processes on two cores; letting each also spawn a second
intra-op thread only makes them fight over the cores (10x slower when the machine is busy).
"""

import torch

torch.set_num_threads(1)
