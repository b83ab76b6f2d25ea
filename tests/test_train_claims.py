"""Two `train`s on one results folder at the same moment compute each run once (issue 14, item 7)."""

import threading
import time

import pandas as pd

import optbench
import optbench.runners.regression as RUNNER  # the linreg task's runs call its linear_regression


def test_two_trains_on_one_folder_compute_each_run_once(tmp_path, monkeypatch):
    computed = []
    real = RUNNER.linear_regression

    def slow(*args, **kwargs):  # long enough that the second train arrives while the first computes
        computed.append(args[0].name)
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(RUNNER, "linear_regression", slow)
    results = [None, None]

    def run(index):
        results[index] = optbench.train(["sgd", "adam:lr=0.01"], "linreg", epochs=1, out=tmp_path)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(computed) == ["adam:lr=0.01", "sgd"]
    pd.testing.assert_frame_equal(results[0].regression, results[1].regression)
    assert not list((tmp_path / "cells").glob("*.claim"))


def test_a_run_whose_claim_holder_died_is_computed_by_the_next_train(tmp_path):
    first = optbench.train(["sgd"], "linreg", epochs=1, out=tmp_path)
    for done in (tmp_path / "cells").glob("*.done"):
        done.unlink()  # as if the process that held the claim was killed before finishing
    (tmp_path / "cells" / f"{done.stem}.claim").touch()
    again = optbench.train(["sgd"], "linreg", epochs=1, out=tmp_path)
    pd.testing.assert_frame_equal(first.regression, again.regression)
    assert (tmp_path / "cells" / f"{done.stem}.done").exists()
