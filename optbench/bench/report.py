"""The benchmark's HTML report: one self-contained file (Jinja2 template `templates/report.html.j2`),
with its figures embedded as base64 PNG, its tables, the protocol and the environment, so it opens
offline and can be mailed as one file."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pandas as pd

from .protocol import WARMUP_FRACTION
from .result import CONFIDENCE
from .views import ranking_view, summary_view

REPORT_DPI = 110


def render(result) -> str:
    """The report's HTML text for a `BenchResult` (draws its figures)."""
    import jinja2
    import matplotlib.pyplot as plt

    from ..results import environment

    images = {}
    for stem, fig in result.plot().items():
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=REPORT_DPI)
        plt.close(fig)
        images[stem] = base64.b64encode(buffer.getvalue()).decode("ascii")
    meta = result.meta
    outcomes = (
        result.trials.assign(outcome=result.trials["status"].str.split(":").str[0])
        .groupby(["task", "optimizer", "outcome"])
        .size()
        .unstack("outcome", fill_value=0)
        .rename_axis(columns=None)
        .reset_index()
    )
    loader = jinja2.PackageLoader("optbench.bench", "templates")
    template = jinja2.Environment(loader=loader, autoescape=True).get_template("report.html.j2")
    return template.render(
        optimizers=meta["optimizers"],
        suite=meta["suite"],
        tasks=meta["tasks"],
        studies=meta["studies"],
        trials=meta["trials_per_study"],
        seeds=meta["seeds"],
        seed=result.seed,
        space=meta["space"],
        images=images,
        ranking=_html(ranking_view(result.ranking, result.task_steps(), CONFIDENCE)),
        summary=_html(summary_view(result.summary, CONFIDENCE)),
        confidence=f"{CONFIDENCE:.0%}",
        outcomes=_html(outcomes),
        modes=_html(_modes(result.trials)),
        skipped=meta.get("skipped") or {},
        failed=result.failed,
        warmup=f"{WARMUP_FRACTION:.0%}",
        task_table=_html(task_view(meta["tasks"])),
        environment=_html(pd.DataFrame(environment().items(), columns=["what", "value"])),
    )


def _modes(trials: pd.DataFrame) -> pd.DataFrame:
    """Per task and optimizer, how its tuning trials ran (the `mode` column; empty for a failed cell)."""
    if "mode" not in trials:
        return pd.DataFrame(columns=["task", "optimizer", "mode"])
    return trials.groupby(["task", "optimizer"], sort=False)["mode"].first().reset_index()


def task_view(tasks: list[dict]) -> pd.DataFrame:
    """The tasks' rows, name first and then the fields in alphabetical order (as meta.json keeps
    them), so a report redrawn from a saved run is the same."""
    frame = pd.DataFrame(tasks)
    return frame[["name", *sorted(c for c in frame.columns if c != "name")]]


def write_report(result, path: Path) -> Path:
    """Write `render(result)` to `path` atomically; returns the path."""
    from ..results import atomic_write_bytes

    atomic_write_bytes(Path(path), render(result).encode("utf-8"))
    return Path(path)


def _html(table: pd.DataFrame):
    import markupsafe

    return markupsafe.Markup(table.to_html(index=False, border=0, na_rep="", escape=True))
