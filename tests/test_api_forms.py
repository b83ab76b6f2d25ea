"""The Python API takes the CLI's text forms and keyword arguments, with the same result."""

import pytest

import optbench
from optbench.errors import OptbenchError
from optbench.sweeps import SweepSpec
from optbench.values import parse_range


def test_sweep_settings_in_text_and_in_python_build_the_same_spec():
    text = SweepSpec.from_settings(
        task="surface:elliptic", batch_sizes="1,4", lr_scales="linear,none", optimizers="adam:lr=0.1",
        lr="1e-4:1:5", momentum="0,0.9", steps=10,
    )  # fmt: skip
    python = SweepSpec(
        task="surface:elliptic",
        batch_sizes=(1, 4),
        lr_scales=("linear", "none"),
        optimizers=("adam:lr=0.1",),
        hparams={"lr": [1e-4, 1e-3, 1e-2, 1e-1, 1.0], "momentum": [0, 0.9]},
        steps=10,
    )
    assert text == python
    assert text.hparams["lr"] == pytest.approx(parse_range("1e-4:1:5"))
    with pytest.raises(OptbenchError, match="malformed list for momentum: 'x' is not a number"):
        SweepSpec.from_settings(momentum="0,x")


def test_sweep_refuses_a_spec_and_settings_together(tmp_path):
    with pytest.raises(OptbenchError, match="give a SweepSpec or settings, not both"):
        optbench.sweep(SweepSpec(), tmp_path, task="digits")


def test_grid_axes_as_ranges_equal_the_lists_they_expand_to():
    as_text = optbench.grid("sgd", {"lr": "1e-3:1e-1:3", "momentum": "0,0.5"}, "elliptic", steps=15)
    as_lists = optbench.grid("sgd", {"lr": [1e-3, 1e-2, 1e-1], "momentum": [0.0, 0.5]}, "elliptic", steps=15)
    assert as_text.metrics["final_loss"].tolist() == as_lists.metrics["final_loss"].tolist()
    assert sorted(set(as_text.metrics["lr"])) == pytest.approx([1e-3, 1e-2, 1e-1])


def test_noise_floor_takes_text_lists_and_ranges():
    as_text = optbench.noise_floor("sgd", steps=20, batch_sizes="10,100", floor_lrs="0.01:0.1:2:log")
    as_lists = optbench.noise_floor("sgd", steps=20, batch_sizes=[10, 100], floor_lrs=[0.01, 0.1])
    assert as_text.floors.equals(as_lists.floors)
    assert sorted(set(as_text.floors["batch_size"])) == [10, 100]
