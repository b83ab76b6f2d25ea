"""Recording surface runs: every k-th step kept for the trajectory table, every step folded into metrics.

`Recorder` is fed each step's points, losses and gradients by `runners.surface.run_surface` and
builds its two tables (see that module for the columns).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from ..objectives import Surface
from ..tasks.defaults import SURFACE_RELATIVE_TOLERANCE as RELATIVE_TOLERANCE
from .divergence import growth_limit, late_step

BUFFER_ELEMENTS = 1 << 19  # positions + losses buffered between metric updates (cache-sized)
STALL_FRACTION = 0.01  # "stalled": f - f_min fell by less than 1% over the last quarter


def coordinate_names(dim: int) -> list[str]:
    return ["x", "y"] if dim == 2 else [f"x{i}" for i in range(dim)]


class Recorder:
    """Keeps every k-th step for the table and folds every step into the per-trial metrics.

    Per step (the only per-step work the runner adds to the optimizer's): the loss is copied into
    a buffer, and the step just taken, θ_t - θ_{t-1}, is taken while both are in cache (the
    optimizer updates θ in place, so θ_t is also kept for the next step). Every `chunk` steps a
    few vectorised passes over the buffered [chunk, trials] block update the metrics. Buffers are
    allocated once (fresh multi-megabyte temporaries cost page faults on every fold), memory stays
    bounded however long the run, and the block stays cache-sized.

    The passes over a block are numpy's: they run on the calling thread. torch would split these
    arrays across its threads, and on a busy machine a parallel region waits for a descheduled
    thread (measured: milliseconds per call, several times the whole run with 2 threads).
    """

    def __init__(self, surface, trials, steps, record_every, dtype, relative_tolerance=RELATIVE_TOLERANCE):
        self.steps, self.record_every, self.dim = steps, record_every, surface.dim
        self.chunk = max(1, min(steps + 1, BUFFER_ELEMENTS // max(1, trials * (surface.dim + 1))))
        self.losses = torch.empty(self.chunk, trials, dtype=dtype)
        self.steps_taken = torch.empty(self.chunk, trials, surface.dim, dtype=dtype)
        self.step_lengths = torch.empty(self.chunk, trials, dtype=dtype)
        self.loss_rows, self.step_rows = self.losses.unbind(0), self.steps_taken.unbind(0)  # views made once
        self.previous = torch.empty(trials, surface.dim, dtype=dtype)  # θ_{t-1}
        self.filled = self.taken = 0  # steps observed / step lengths buffered in this chunk
        self.first_step = 0  # the step the buffer's first row belongs to
        self.recorded_steps = [t for t in range(0, steps + 1, record_every)]
        if self.recorded_steps[-1] != steps:
            self.recorded_steps.append(steps)
        # Kept steps go straight into their table columns, coordinates stored coordinate-major, so
        # that each column is one contiguous block the DataFrame takes without copying.
        self.kept_row = {t: row for row, t in enumerate(self.recorded_steps)}
        kept = len(self.recorded_steps)
        self.kept_coordinates = torch.empty(surface.dim, kept, trials, dtype=dtype)
        self.kept_losses = torch.empty(kept, trials, dtype=dtype)
        self.kept_grad_norms = torch.empty(kept, trials, dtype=dtype)
        self.f_min, self.relative_tolerance = surface.minimum_value, relative_tolerance
        self.tolerance = None  # per trial: relative_tolerance (f(start) - f_min), from the first chunk
        self.start = None  # per trial: f at the start (runners.divergence: the stretch above it)
        self.last_within = np.full(trials, -1, dtype=np.int64)  # the last step with f <= f(start)
        self.non_finite = np.zeros(trials, dtype=bool)  # f was NaN/inf at some step
        self.late_step, self.late_loss = late_step(steps), None  # for "stalled" and "still rising"
        self.early_peak = np.full(trials, -np.inf)  # the largest f before late_step, and from it on
        self.late_peak = np.full(trials, -np.inf)
        self.path_length = torch.zeros(trials, dtype=dtype)
        self.converged_at = torch.full((trials,), math.nan, dtype=dtype)
        self.diverged_at = torch.full((trials,), math.nan, dtype=dtype)

    def observe(self, t, points, value, gradient):
        self.loss_rows[self.filled].copy_(value)
        self.filled += 1
        if t > 0:
            torch.sub(points, self.previous, out=self.step_rows[self.taken])
            self.taken += 1
        self.previous.copy_(points)
        row = self.kept_row.get(t)
        if row is not None:
            self.kept_coordinates[:, row].copy_(points.T)
            self.kept_losses[row].copy_(value)
            self.kept_grad_norms[row].copy_(gradient.norm(dim=1))
        if self.filled == self.chunk or t == self.steps:
            with np.errstate(over="ignore", invalid="ignore"):  # NaN/inf is a result, not a warning
                self._fold()

    def _fold(self):
        """Reduce the buffered steps into the metrics: a few passes over [chunk, trials] scalars."""
        losses = self.losses[: self.filled].numpy()
        if self.start is None:
            self.start = losses[0].copy()
            if self.f_min is not None:
                self.tolerance = self.relative_tolerance * np.maximum(losses[0] - self.f_min, 0.0)
        # Column reductions (no elementwise passes) find the trials with an event in this chunk; only
        # those few columns are then searched for the step. NaN propagates through max/min.
        split = min(max(self.late_step - self.first_step, 0), len(losses))
        for rows, peak in ((losses[:split], self.early_peak), (losses[split:], self.late_peak)):
            if len(rows):
                largest = rows.max(axis=0)
                self.non_finite |= ~np.isfinite(largest)
                np.fmax(peak, largest, out=peak)
        self.non_finite |= ~np.isfinite(losses.min(axis=0))
        if self.f_min is None:  # unbounded below: only NaN/inf counts (runners.divergence)
            _first(
                self.diverged_at.numpy(),
                self.non_finite,
                lambda columns: ~np.isfinite(losses[:, columns]),
                self.first_step,
            )
        else:  # f >= f_min: the gap is at most g_0 where f is at most f(start)
            end_within = losses[-1] <= self.start
            self.last_within[end_within] = self.first_step + len(losses) - 1
            columns = np.flatnonzero(~end_within)
            if len(columns):
                within = losses[:, columns] <= self.start[columns]
                seen = within.any(axis=0)
                last = len(losses) - 1 - within[::-1].argmax(axis=0)
                self.last_within[columns[seen]] = self.first_step + last[seen]
        if self.tolerance is not None:
            threshold = self.f_min + self.tolerance
            _first(
                self.converged_at.numpy(),
                losses.min(axis=0) <= threshold,
                lambda columns: losses[:, columns] <= threshold[columns],
                self.first_step,
            )
        if self.first_step <= self.late_step < self.first_step + self.filled:
            self.late_loss = losses[self.late_step - self.first_step].copy()
        self._add_step_lengths(self.taken)
        self.first_step += self.filled
        self.filled = self.taken = 0
        if self.first_step > self.steps and self.f_min is not None:
            self._resolve_divergence(losses[-1])

    def _resolve_divergence(self, final):
        """At the end of the budget: runners.divergence's rules (a) NaN/inf, (b) f_T - f_min beyond
        GROWTH_FACTOR (g_0 + 1) and still rising; diverged at the step after the last one with f <= f(start)."""
        far = ~(final - self.f_min <= growth_limit(self.start, self.f_min)) & (
            self.late_peak > self.early_peak
        )
        at = np.minimum(self.last_within + 1, self.steps).astype(float)
        self.diverged_at.numpy()[:] = np.where(self.non_finite | far, at, np.nan)

    def _add_step_lengths(self, count):
        """path_length += the lengths of the `count` buffered steps.

        In the order the lengths have always been computed (square each coordinate difference, add
        the squares, sqrt, sum over the chunk's steps), so the floating-point result is unchanged.
        """
        if count == 0:
            return
        squares, lengths = self.steps_taken[:count].numpy(), self.step_lengths[:count].numpy()
        np.multiply(squares, squares, out=squares)
        if self.dim == 2:  # the two squares added directly: the same sum as row_sum's, in one pass
            np.add(squares[..., 0], squares[..., 1], out=lengths)
        else:  # row_sum's own sum (torch's matrix-vector product), so both paths agree
            torch.matmul(
                self.steps_taken[:count],
                torch.ones(self.dim, dtype=self.steps_taken.dtype),
                out=self.step_lengths[:count],
            )
        np.sqrt(lengths, out=lengths)
        self.path_length.numpy()[:] += lengths.sum(axis=0)

    def tables(self, columns: dict, hparams: dict, surface: Surface, evaluations=None):
        """(trajectory, metrics) tables; `evaluations`: cumulative gradient evaluations per trial after each
        step, [steps + 1, trials] (None: one per step, as for every one-gradient optimizer)."""
        trials = self.path_length.shape[0]
        kept = len(self.recorded_steps)
        coordinates, losses = self.kept_coordinates, self.kept_losses  # [dim, kept, trials], [kept, trials]
        step = np.array(self.recorded_steps, dtype=np.int64)
        diverged_at = torch.nan_to_num(self.diverged_at, nan=math.inf).to(torch.float64).numpy()
        names = coordinate_names(self.dim)
        # copy=False: the columns are already laid out as the table needs them (pandas would copy
        # each one and then again to consolidate them, ~10 ms per 250,000 rows).
        trajectory = pd.DataFrame(
            {
                **{name: _repeat(values, kept) for name, values in hparams.items()},
                "trial": np.tile(np.arange(trials, dtype=np.int64), kept),
                "step": np.repeat(step, trials),
                **{name: coordinates[i].reshape(-1).numpy() for i, name in enumerate(names)},
                "loss": losses.reshape(-1).numpy(),
                "grad_norm": self.kept_grad_norms.reshape(-1).numpy(),
                "diverged": (step.astype(np.float64)[:, None] >= diverged_at).reshape(-1),
            },
            copy=False,
        )
        trajectory = _prepend_constant(trajectory, columns)
        final = coordinates[:, -1].T.contiguous()  # [trials, dim]
        metrics = pd.DataFrame(
            {
                **{name: _repeat(values, 1) for name, values in hparams.items()},
                "trial": torch.arange(trials).numpy(),
                **{f"start_{name}": coordinates[i, 0].numpy() for i, name in enumerate(names)},
                **{f"final_{name}": coordinates[i, -1].numpy() for i, name in enumerate(names)},
                "final_loss": losses[-1].numpy(),
                "distance_to_minimum": surface.distance_to_nearest_minimum(final).numpy(),
                "tolerance": self.tolerance if self.tolerance is not None else math.nan,
                "steps_to_tolerance": self.converged_at.numpy(),
                **self._evaluation_columns(evaluations),
                "path_length": torch.where(torch.isnan(self.diverged_at), self.path_length, math.nan).numpy(),
                "diverged_at": self.diverged_at.numpy(),
                "diverged": torch.isfinite(self.diverged_at).numpy(),
                "steps": self.steps,
                "outcome": self._outcomes(losses.numpy()),
            }
        )
        return trajectory, _prepend_constant(metrics, columns)

    def _outcomes(self, losses: np.ndarray) -> np.ndarray:
        """Per trial: 'reached at step t', 'diverged at step t', 'stalled' (f - f_min fell by less than
        STALL_FRACTION over the last quarter of the steps) or 'budget ran out after N steps'."""
        if self.f_min is None:
            return np.where(
                np.isnan(self.diverged_at.numpy()),
                f"ran {self.steps} steps (no known minimum)",
                [f"diverged at step {t:.0f}" for t in self.diverged_at.numpy()],
            )
        with np.errstate(invalid="ignore", over="ignore"):
            stalled = losses[-1] - self.f_min > (1 - STALL_FRACTION) * (self.late_loss - self.f_min)
        # over Python floats and bools: a loop over numpy scalars costs ~10x more per trial
        stalled_text = f"stalled (not reached in {self.steps} steps)"
        ran_out_text = f"budget ran out after {self.steps} steps"
        outcomes = [
            f"diverged at step {diverged:.0f}"
            if diverged == diverged  # not NaN
            else f"reached at step {reached:.0f}"
            if reached == reached
            else stalled_text
            if is_stalled
            else ran_out_text
            for reached, diverged, is_stalled in zip(
                self.converged_at.tolist(), self.diverged_at.tolist(), stalled.tolist(), strict=True
            )
        ]
        return np.array(outcomes, dtype=object)

    def _evaluation_columns(self, evaluations) -> dict:
        """Gradient evaluations in the whole run and up to the step that reached the tolerance."""
        reached = self.converged_at.numpy()
        if evaluations is None:
            return {"gradient_evaluations": float(self.steps), "evaluations_to_tolerance": reached.copy()}
        evaluations = np.asarray(evaluations, dtype=np.float64)
        rows = np.nan_to_num(reached, nan=0).astype(np.int64)
        at_reach = evaluations[rows, np.arange(len(rows))]
        return {
            "gradient_evaluations": evaluations[-1],
            "evaluations_to_tolerance": np.where(np.isnan(reached), math.nan, at_reach),
        }


def _first(target: np.ndarray, happened: np.ndarray, condition, offset: int):
    """Fill target[trial] with the first step of this chunk where `condition` holds, if not yet set.

    target: a numpy view of the metric tensor (written in place); happened: [trials] bool, the
    event occurs somewhere in the chunk; condition(columns) gives the [chunk, len(columns)]
    condition for just those trials (argmax returns the first maximum).
    """
    columns = np.flatnonzero(happened & np.isnan(target))
    if len(columns):
        target[columns] = condition(columns).argmax(axis=0) + offset


def _repeat(values, times):
    """A per-trial hyperparameter column repeated for each recorded step (trial varies fastest)."""
    if isinstance(values, torch.Tensor):
        return values.to(torch.float64).repeat(times).numpy()
    return values


def _prepend_constant(table: pd.DataFrame, columns: dict) -> pd.DataFrame:
    for position, (name, value) in enumerate(columns.items()):
        table.insert(position, name, _constant_column(value, len(table)))
    return table


def _constant_column(value, length: int):
    """`value` as a column of `length` rows, with the dtype pandas gives it when broadcasting.

    A string is built by pyarrow in one call where pandas stores strings in pyarrow: pandas' own
    broadcast gathers row by row (~3 ms per 250,000 rows, per column). Anything else is left to pandas.
    """
    if not isinstance(value, str):
        return value
    dtype = pd.Series([value]).dtype
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
        return value
    strings = pa.repeat(pa.scalar(value, pa.large_string()), length)
    return pd.arrays.ArrowStringArray(pa.chunked_array([strings]), dtype=dtype)
