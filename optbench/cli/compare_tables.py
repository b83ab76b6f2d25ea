"""The tables `optbench compare` prints: metrics, rates against theory, tuning winners, reproducibility,
and the linreg noise floor. Each turns a result's DataFrame into a rich Table; none computes a result."""

from __future__ import annotations

import math

import numpy as np
from rich.table import Table

from ..theory import NOT_CONVERGING, condition_number, optimal_gradient_descent, optimal_heavy_ball
from .common import format_number


def _table(title: str, columns, left=("optimizer",)) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="left" if column in left else "right", no_wrap=column == "optimizer")
    return table


def _final_point(runs) -> str | None:
    """'(0.0577, -0.00654)': where a single run ended, for surfaces of up to 3 dimensions; else None."""
    names = [c for c in runs.columns if c.startswith("final_") and c not in ("final_loss",)]
    if len(runs) != 1 or not 0 < len(names) <= 3:
        return None
    return "(" + ", ".join(f"{float(runs[name].iloc[0]):.6g}" for name in names) + ")"


def metrics_table(metrics, surface, steps) -> Table:
    trials = metrics["trial"].nunique()
    suffix = (
        f" (median of {trials} trials; steps to tol counts a trial that did not reach as beyond the budget)"
        if trials > 1
        else ""
    )
    points = {name: _final_point(runs) for name, runs in metrics.groupby("optimizer", sort=False)}
    shown_point = all(point is not None for point in points.values())
    point_column = ("final point",) if shown_point else ()
    columns = (
        "optimizer",
        "settings",
        "final loss",
        "distance to min",
        *point_column,
        "steps to tol",
        "path length",
        "diverged",
    )
    table = _table(
        f"{surface.name}, {steps} steps{suffix}", columns, left=("optimizer", "settings", "final point")
    )
    for name, runs in metrics.groupby("optimizer", sort=False):
        diverged = int(runs["diverged"].sum())
        reached = runs["steps_to_tolerance"].notna().sum()
        table.add_row(
            name,
            runs["settings"].iloc[0],
            format_number(runs["final_loss"].median()),
            format_number(runs["distance_to_minimum"].median()),
            *((points[name],) if shown_point else ()),
            _steps_to_tolerance(runs, steps) if reached else _not_reached(runs),
            format_number(runs["path_length"].median()),
            (f"{diverged}/{trials}" if trials > 1 else f"step {int(runs['diverged_at'].iloc[0])}")
            if diverged
            else "no",
        )
    return table


def _steps_to_tolerance(runs, steps) -> str:
    """The lower median of steps to tolerance over all trials, a trial that did not reach counted as
    beyond the budget (so none is dropped), as a whole step: '6', '> 500 steps'; with '(k/n reached)'
    where not every trial reached."""
    values = np.sort(runs["steps_to_tolerance"].to_numpy(dtype=float))
    values = np.where(np.isnan(values), np.inf, values)
    median = values[(len(values) - 1) // 2]  # the lower median: a step count some trial took
    text = (
        f"{int(median)}"
        if np.isfinite(median)
        else f"> {int(runs['steps'].max()) if 'steps' in runs else steps}"
    )
    reached = int(np.isfinite(values).sum())
    return text if reached == len(values) else f"{text} ({reached}/{len(values)} reached)"


def _not_reached(runs) -> str:
    """Why no trial reached the tolerance: the one trial's outcome, or the most common one."""
    if "outcome" not in runs:
        return "never"
    outcomes = runs["outcome"].value_counts()
    return outcomes.index[0] + (f" ({outcomes.iloc[0]}/{len(runs)})" if len(runs) > 1 else "")


def _rate(value: float) -> str:
    """ρ to 4 decimals, with more where those would round a slow rate to 1.0000; '-' for none."""
    if value != value:
        return "-"
    return f"{value:.4f}" if round(value, 4) != 1 or value == 1 else f"{value:.6f}"


def rates_table(rates) -> Table:
    """Measured linear rate (median over trials) next to the analytic one, per optimizer."""
    table = _table(
        "linear convergence rate ρ (‖θ_t - θ*‖ ≈ C ρ^t; fitted over the 2nd half, 95% interval)",
        ("optimizer", "measured", "95% interval", "analytic", "difference"),
    )
    for name, rows in rates.groupby("optimizer", sort=False):
        measured, analytic = rows["measured_rate"].median(), rows["analytic_rate"].iloc[0]
        low, high = rows["measured_low"].median(), rows["measured_high"].median()
        verdict = rows["verdict"].iloc[0] if "verdict" in rows else "differs"
        known = analytic == analytic
        difference = f"{(measured - analytic) / analytic:+.2%}" if known else "-"
        if measured != measured and "verdict" in rows and (rows["verdict"] == NOT_CONVERGING).any():
            verdict = NOT_CONVERGING
        table.add_row(
            name,
            _rate(measured),
            f"{low:.4f}-{high:.4f}" if low == low else "-",
            f"{analytic:.4f}" if known else "no formula",
            {"agrees": f"{difference} (within the fit's interval)", "differs": difference}.get(
                verdict, verdict
            ),
        )
    return table


def theory_caption(surface) -> str:
    eigenvalues = surface.hessian_eigenvalues
    if min(eigenvalues) <= 0:  # a saddle: no minimum, so no optimal lr or linear rate to quote
        grows = -min(eigenvalues)
        return (
            f"theory (λ from {min(eigenvalues):.3g} to {max(eigenvalues):.3g}): the Hessian is not positive "
            f"definite, so there is no minimum and no linear rate; gradient descent moves away along the "
            f"direction of λ = {min(eigenvalues):.3g} by a factor 1 + lr·{grows:.3g} per step"
        )
    gd, hb = optimal_gradient_descent(eigenvalues), optimal_heavy_ball(eigenvalues)
    return (
        f"theory (λ from {min(eigenvalues):.3g} to {max(eigenvalues):.3g}, "
        f"k = {condition_number(eigenvalues):.3g}; rate ρ = per-step contraction of the distance "
        f"‖θ - θ*‖, the loss gap f - f* shrinks by ρ²): "
        f"gradient descent stable for lr < {2 / max(eigenvalues):.3g}, best lr {gd['lr']:.3g} -> "
        f"ρ = (k-1)/(k+1) = {gd['rate']:.4f}, loss ρ² = (k-1)²/(k+1)² = {gd['rate'] ** 2:.4f}; "
        f"heavy ball (torch SGD momentum, dampening d) stable for lr·(1-d) < 2(1+μ)/λ_max, "
        f"best lr {hb['lr']:.3g}, momentum {hb['momentum']:.3g} -> ρ = (√k-1)/(√k+1) = {hb['rate']:.4f}, "
        f"loss ρ² = {hb['rate'] ** 2:.4f}"
    )


def tuning_table(summary, tune: dict, surface) -> Table:
    """summary: the tuning winners (`Tuning.summary`); tune: `TuningPlan.meta(steps)`."""
    over, criterion = tune["over"], tune["criterion"]
    title = (
        f"tuning on {surface.name}: the same {tune['cells']} cells x {tune['starts']} starts x {tune['steps']} "
        f"steps for every optimizer; criterion {criterion} (median over starts, lowest wins)"
    )
    table = _table(
        title,
        ("optimizer", "winner", criterion, "converged (starts)", "lr converging", "note"),
        left=("optimizer", "winner", "note"),
    )
    for row in summary.itertuples(index=False):
        winner = ", ".join(f"{name}={format_number(getattr(row, name))}" for name in over)
        if math.isfinite(row.score):
            score = format_number(row.score)
        else:
            score = "never reached" if criterion == "steps-to-tol" else "diverged"
        low, high = row.lr_converging_low, row.lr_converging_high
        lr_range = (f"{low:.3g} - {high:.3g}" if low == low else "none") if "lr" in over else "-"
        table.add_row(row.optimizer, winner, score, f"{row.reached}/{row.starts}", lr_range, row.note or "")
    return table


def repro_table(report) -> Table:
    table = _table(
        "reproducibility: first recorded step at which the trajectories differ",
        ("optimizer", "comparison", "first differing step", "difference there", "max difference"),
        left=("optimizer", "comparison"),
    )
    for row in report.itertuples(index=False):
        same = row.first_step is None or row.first_step != row.first_step
        table.add_row(
            row.optimizer,
            row.comparison,
            f"identical for all {row.steps} steps" if same else str(int(row.first_step)),
            "-" if same else f"{row.difference_there:.3g}",
            f"{row.max_difference:.3g}",
        )
    return table


def noise_floor_table(study) -> Table:
    """The settled f - f* per (optimizer, batch size) next to the exact SGD floor; a seed that diverged
    is counted in the diverged column, as in every optbench table."""
    meta = study.meta
    steps = meta["steps"]
    curves = study.curves
    table = _table(
        f"stochastic linear regression (1,000 samples, f* = {meta['least_squares']['loss']:.3g}): "
        f"f - f* settled over steps {steps // 2}-{steps}, mean of {meta['seeds']} seed(s)",
        ("optimizer", "lr", "batch size", "settled f - f*", "exact SGD floor", "ratio", "diverged"),
    )
    for row in study.settled().itertuples(index=False):
        known = row.theory_floor == row.theory_floor
        run = curves[(curves["optimizer"] == row.optimizer) & (curves["batch_size"] == row.batch_size)]
        table.add_row(
            row.optimizer,
            format_number(row.lr),
            str(row.batch_size),
            format_number(row.settled),
            format_number(row.theory_floor) if known else "-",
            f"{row.ratio:.2f}" if row.ratio == row.ratio else "-",
            _diverged_seeds(run),
        )
    return table


def _diverged_seeds(run) -> str:
    """'no', 'step N' (one seed) or 'k/n' (seeds that diverged) from per-step rows with seed and diverged,
    where a non-finite f - f* counts as diverged too."""
    gone = run["diverged"].astype(bool) | ~run["suboptimality"].map(math.isfinite)
    seeds = run["seed"].nunique() if "seed" in run else 1
    if not gone.any():
        return "no"
    if seeds == 1:
        return f"step {int(run.loc[gone, 'step'].min())}"
    return f"{run.loc[gone, 'seed'].nunique()}/{seeds}"
