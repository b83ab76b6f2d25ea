"""torch.distributed data parallel: 2 processes x batch 32 == 1 process x batch 64."""

import torch

from optbench.runners.distributed import launch
from optbench.runners.training import TrainSpec, train


def test_two_processes_match_one_process_with_the_global_batch():
    # MLP (no batch norm), SGD, float64, a few steps: DDP's gradient average over 2 x 32 samples
    # is the gradient of the mean over the same 64 samples
    spec = TrainSpec(
        optimizer="sgd:lr=0.1,momentum=0.9",
        model="mlp",
        dtype="float64",
        batch_size=64,
        epochs=1,
        max_steps=4,
        device="cpu",
        seed=1,
    )
    two = launch(spec, nproc=2)
    one = train(spec)
    assert two.summary["processes"].item() == 2 and one.summary["processes"].item() == 1
    for name, tensor in one.state_dict.items():
        torch.testing.assert_close(two.state_dict[name], tensor, rtol=1e-12, atol=1e-12)
    # the recorded step losses are the global-batch means too
    torch.testing.assert_close(
        torch.tensor(two.steps["loss"].to_list()),
        torch.tensor(one.steps["loss"].to_list()),
        rtol=1e-12,
        atol=1e-12,
    )
    # and moving away from the start proves the processes trained at all
    assert one.steps["loss"].iloc[-1] < one.steps["loss"].iloc[0]


def test_a_user_error_inside_the_workers_is_one_line():
    import pytest

    from optbench.errors import OptbenchError

    with pytest.raises(OptbenchError, match="does not split evenly across 2 processes"):
        launch(TrainSpec(batch_size=63, device="cpu", max_steps=1), nproc=2)
