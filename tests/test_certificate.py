"""`optbench.certificate`: the verdict the `verify` command prints, decided in the library."""

import torch

from optbench import certificate
from optbench.optimizers import SGD
from optbench.optimizers.registry import Algorithm, get


def run_certificate(algorithm):
    seen = []
    row = certificate.certificate(algorithm, seen.append)
    return row, seen


def test_certificate_runs_the_announced_checks_and_finds_sgd_equivalent():
    algorithm = get("sgd")
    row, seen = run_certificate(algorithm)
    assert len(seen) == certificate.certificate_size(algorithm)  # the progress bar's total is exact
    assert row["equivalent"] and row["combinations"] == len(algorithm.combinations())
    assert row["worst_deviation_float64"] <= row["tolerance_float64"]


class SlightlyOff(SGD):
    """SGD that moves every parameter a further 10⁻⁶ of itself each step: not torch.optim.SGD."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = super().step(closure)
        for group in self.param_groups:
            for p in group["params"]:
                p.mul_(1 + 1e-6)
        return loss


def test_certificate_says_differs_for_a_wrong_update(monkeypatch):
    monkeypatch.setattr(Algorithm, "ours", property(lambda algorithm: SlightlyOff))
    row, _ = run_certificate(get("sgd"))
    assert not row["equivalent"]
    assert len(row["failed_combinations"]) == row["combinations"]
