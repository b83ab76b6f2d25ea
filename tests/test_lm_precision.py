"""A language model trained under bfloat16 autocast (`--bf16`) and through torch.compile
(`--compile`) on the tiny model and the shipped fixture: the same run as eager float32, to the
precision each allows."""

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import optbench
from optbench.cli import main

FIXTURE = str(Path(__file__).parent / "fixtures" / "macbeth-act1.txt")
LM = dict(task="shakespeare-tiny", data_dir=FIXTURE, device="cpu", max_steps=20, eval_every_steps=10)


@pytest.fixture(scope="module")
def eager():
    return optbench.train(["adamw"], **LM)


def test_bf16_follows_float32_to_bfloat16_precision(eager):
    bf16 = optbench.train(["adamw"], bf16=True, **LM)
    assert bf16.meta["runs"][0]["bf16"] is True
    # bfloat16 keeps 8 bits of mantissa (relative rounding 2^-9 ≈ 0.2%): the losses follow the
    # float32 run closely over 20 steps, but are not the same numbers
    ours, reference = bf16.steps["loss"].to_numpy(), eager.steps["loss"].to_numpy()
    assert np.all(np.isfinite(ours)) and not np.array_equal(ours, reference)
    assert np.abs(ours - reference).max() < 0.05
    assert bf16.evaluations["val_loss"].to_numpy() == pytest.approx(
        eager.evaluations["val_loss"].to_numpy(), abs=0.05
    )


def test_channels_last_is_refused_for_text_in_one_line(tmp_path):
    out = tmp_path / "out"
    args = [
        "train",
        "--task",
        "shakespeare-tiny",
        "--data-dir",
        FIXTURE,
        "--channels-last",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and not out.exists()
    assert "--channels-last does not apply to task 'shakespeare-tiny' (no images)" in result.output


@pytest.mark.slow
def test_compiled_training_matches_eager(eager):
    compiled = optbench.train(["adamw"], compile=True, **LM)
    assert compiled.meta["runs"][0]["compile"] is True and "compile" not in eager.meta["runs"][0]
    # inductor fuses and reorders float32 arithmetic: the same run to rounding, not bit for bit
    np.testing.assert_allclose(compiled.steps["loss"], eager.steps["loss"], rtol=1e-4)
    np.testing.assert_allclose(compiled.evaluations["val_loss"], eager.evaluations["val_loss"], rtol=1e-4)
