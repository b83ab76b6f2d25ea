"""The one GPU check of optbench: a single prepared run of at most 5 minutes, in time-boxed sections.

    PYTHONPATH=. python3 benchmarks/gpu_check.py --out $OUT/gpu_check.md          # on the GPU machine
    PYTHONPATH=. python3 benchmarks/gpu_check.py --only step-cost --out $OUT/gpu_check.md   # one section again
    PYTHONPATH=. python3 benchmarks/gpu_check.py --dry-run --out /tmp/gpu_check.md # CPU, tiny sizes

The sections run in order, each inside its own time box, and each appends its results to the
markdown file (`--out`) line by line as they come, so a run cut short keeps what it measured:

1. equivalence: `optbench.verify.compare_with_torch` on the device, ours (readable, fast and
   compiled paths) against torch.optim's default, fused and capturable implementations; the
   optim_db-driven test (`tests/test_optim_db.py`, with OPTBENCH_TEST_DEVICE set) if present; an
   AMP step (autocast + GradScaler, including a skipped step on an inf gradient).
2. step-cost: the step-cost table at ResNet-18 and 10x ResNet-18 parameter shapes, through
   `benchmarks/step_cost.py`; the floor is the device's measured copy bandwidth.
3. training: optbench's training loop (`optbench.runners.training.train`) against a bare loop with
   torch's fused optimizer, same CIFAR-shaped ResNet-20 and data, fp32 and bf16 + channels_last.
4. extras: the CPU-versus-device reproducibility check of `compare --check-repro`, and features the
   tree does not drive here yet (batched trainer), each skipped with a note.
5. language-model: the character-level transformer trained eager, under bf16 autocast, compiled, and
   both: steps/s and the validation loss after a fixed number of steps.

A section that raises records the tail of its traceback and the next one runs. A section stops
starting new items once its box is spent (soft), and is interrupted at its box plus a grace period
(hard, SIGALRM); the whole run ends within WHOLE_RUN_S of its start, a late section shortening the
boxes of the ones after it. The time boxes belong to the device run: the dry run has none by default
(`--no-time-boxes`), so that it proves every section end to end however slow the machine is.

Runs from the source tree with whatever Python and torch the machine has, records their versions,
installs and downloads nothing, and never imports `optbench.cli` (the GPU machine has no rich-click).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the source tree's optbench, whatever is installed
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.gpu_sections import FAILED  # noqa: E402

TRACEBACK_LINES = 12
WHOLE_RUN_S = 285  # from main()'s start; with Python's start and torch's import, under 5 minutes


@dataclass(frozen=True)
class Settings:
    device: str  # 'cuda' or 'cpu'
    tiny: bool  # CPU-sized problems: the dry run
    compile: bool  # include the torch.compile'd fast path (compiles: seconds per kernel)
    data_dir: str | None  # a cifar-10-batches-py folder; generated CIFAR-shaped data without one
    root: Path = ROOT


class Report:
    """The markdown file: every write is appended at once (and echoed), so nothing waits for the end."""

    def __init__(self, path: Path, echo: bool = True):
        self.path = Path(path)
        self.echo = echo
        self.failed_items = 0  # rows written for items that raised (gpu_sections.failure)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, text: str = "") -> None:
        with self.path.open("a", encoding="utf-8") as file:
            file.write(text + "\n")
        if self.echo:
            print(text, flush=True)

    def table(self, columns: list[str]) -> Callable[[list], None]:
        """Write a table header; returns the function that writes one row."""
        self.write("| " + " | ".join(columns) + " |")
        self.write("|" + "---|" * len(columns))

        def row(cells: list) -> None:
            texts = [_cell(c) for c in cells]
            self.failed_items += any(text.startswith(FAILED) for text in texts)
            self.write("| " + " | ".join(texts) + " |")

        return row


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-2 or abs(value) >= 1e5 else f"{value:.3f}"
    return str(value).replace("|", "/").replace("\n", " ")


class Budget:
    """A section's time box: `left()` seconds until the soft end; `fits(cost)` before starting an item."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()

    def fits(self, cost: float) -> bool:
        return cost <= self.left()


class SectionTimeout(BaseException):
    """Raised by SIGALRM when a section outlives its box plus the grace period.

    A BaseException, like KeyboardInterrupt, so that the `except Exception` of code that records
    failures as results (the certificate does) cannot swallow it."""


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    box: float  # seconds
    run: Callable[[Settings, Report, Budget], None]


def grace(box: float) -> float:
    """How long past its box a section may run before it is interrupted: time for the item in flight."""
    return max(5.0, 0.25 * box)


def run_section(
    section: Section,
    settings: Settings,
    report: Report,
    box: float | None = None,
    grace_s: float | None = None,
) -> str:
    """Run one section in its time box; returns 'done', 'done, N items failed', 'failed' or 'cut'.
    Never raises.

    box: seconds after which the section starts no new item (default: the section's own; `math.inf`
    for none); grace_s: seconds after the box at which SIGALRM interrupts it (default: `grace(box)`).
    """
    box = section.box if box is None else box
    hard = box + (grace(box) if grace_s is None else grace_s)
    report.write(f"\n## {section.title}\n")
    budget = Budget(box)
    failed_before = report.failed_items

    def interrupt(signum, frame):
        raise SectionTimeout()

    alarm = hasattr(signal, "setitimer") and math.isfinite(hard)
    if alarm:
        previous = signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, max(hard, 1e-3))  # 0 would disarm the timer
    try:
        try:
            section.run(settings, report, budget)
        finally:
            if alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
        failed = report.failed_items - failed_before
        status = f"done, {failed} item{'s' if failed > 1 else ''} failed" if failed else "done"
    except SectionTimeout:
        status = "cut"
    except Exception:  # noqa: BLE001 - a failed section is a result; the next one runs
        status = "failed"
        tail = traceback.format_exc().rstrip().splitlines()[-TRACEBACK_LINES:]
        report.write("\nfailed; traceback (last lines):\n\n```\n" + "\n".join(tail) + "\n```")
    finally:
        if alarm:
            signal.signal(signal.SIGALRM, previous)
    if status == "cut":
        report.write(
            f"\n**cut**: interrupted at its hard limit ({hard:.1f} s); the rows above "
            "are complete, the item in flight is lost."
        )
    limit = f"box {box:.0f} s" if math.isfinite(box) else "no time box"
    report.write(f"\n_section {section.name}: {status} in {budget.elapsed():.1f} s ({limit})_")
    return status


def environment(settings: Settings) -> list[tuple[str, str]]:
    """What ran: versions of Python, torch, CUDA and the device; where optbench was imported from."""
    import optbench

    rows = [
        ("date (UTC)", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")),
        ("host", f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs)"),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("torch", f"{torch.__version__} (intra-op threads: {torch.get_num_threads()})"),
        (
            "optbench",
            (
                f"{optbench.__version__} from {Path(optbench.__file__).parent}, "
                f"commit {_git_commit(settings.root)}"
            ),
        ),
        ("device", settings.device + (" (dry run: tiny sizes)" if settings.tiny else "")),
    ]
    for module in ("numpy", "pandas", "pyarrow", "triton"):
        rows.append((module, _version(module)))
    if settings.device.startswith("cuda"):
        properties = torch.cuda.get_device_properties(torch.device(settings.device).index or 0)
        rows += [
            (
                "GPU",
                (
                    f"{properties.name}, {properties.multi_processor_count} SMs, "
                    f"{properties.total_memory / 2**30:.0f} GiB, compute capability "
                    f"{properties.major}.{properties.minor}"
                ),
            ),
            ("CUDA (torch built with)", str(torch.version.cuda)),
            ("cuDNN", str(torch.backends.cudnn.version())),
            ("driver", _nvidia_smi("driver_version")),
            (
                "TF32",
                (f"matmul {torch.backends.cuda.matmul.allow_tf32}, cuDNN {torch.backends.cudnn.allow_tf32}"),
            ),
        ]
    return rows


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "not installed"


def _git_commit(root: Path) -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    if head.returncode:
        return "unknown (not a git checkout)"
    return head.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def _nvidia_smi(field: str) -> str:
    try:
        answer = subprocess.run(
            ["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown (no nvidia-smi)"
    return answer.stdout.strip() or "unknown"


def sections() -> list[Section]:
    from benchmarks.gpu_sections import equivalence, extras, language_model, step_cost_table, training

    # the boxes sum to 265 s, leaving 20 s of WHOLE_RUN_S for the environment and a late item
    return [
        Section("equivalence", "1. Equivalence on the device", 70, equivalence.run),
        Section("step-cost", "2. Step cost at ResNet-18 and 10x ResNet-18 shapes", 80, step_cost_table.run),
        Section("training", "3. Training loop against a bare fused loop", 60, training.run),
        Section("extras", "4. Everything else", 25, extras.run),
        Section("language-model", "5. Language model: eager, bf16, compile", 30, language_model.run),
    ]


def parse_boxes(items: list[str], names: list[str], parser) -> dict[str, float]:
    boxes = {}
    for item in items:
        name, _, seconds = item.partition("=")
        if name not in names:
            parser.error(f"--box {item}: unknown section '{name}' (valid: {', '.join(names)})")
        try:
            boxes[name] = float(seconds)
        except ValueError:
            parser.error(f"--box {item}: '{seconds}' is not a number of seconds")
        if not boxes[name] > 0:
            parser.error(f"--box {item}: the box must be positive")
    return boxes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    names = [s.name for s in sections()]
    parser.add_argument("--out", default="gpu_check.md", help="markdown file the results are appended to")
    parser.add_argument("--only", choices=names, action="append", help="run only this section (repeatable)")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (CPU)")
    parser.add_argument("--dry-run", action="store_true", help="same as --device cpu --tiny")
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="time and certify the compiled fast path (default: on, off with --tiny)",
    )
    parser.add_argument(
        "--time-boxes",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="time-box each section and the whole run (default: on, off with --tiny: the dry run "
        "proves the sections, it does not race the clock)",
    )
    parser.add_argument("--data-dir", default=None, help="a cifar-10-batches-py folder (else generated data)")
    parser.add_argument(
        "--box",
        action="append",
        default=[],
        metavar="SECTION=SECONDS",
        help="another time box for a section, e.g. to rerun one with more room (repeatable)",
    )
    args = parser.parse_args(argv)
    boxes = parse_boxes(args.box, names, parser)
    device = "cpu" if args.dry_run else args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {device}: CUDA is not available on this machine")
    tiny = args.tiny or args.dry_run
    settings = Settings(device, tiny, not tiny if args.compile is None else args.compile, args.data_dir)
    report = Report(Path(args.out))
    report.write(f"\n# optbench GPU check ({'dry run, ' if tiny else ''}{device})\n")
    row = report.table(["what", "value"])
    try:
        rows = environment(settings)
    except Exception as error:  # noqa: BLE001 - the sections are worth running without it
        rows = [("environment", f"not recorded: {type(error).__name__}: {error}")]
    for name, value in rows:
        row([name, value])
    time_boxes = not tiny if args.time_boxes is None else args.time_boxes
    started = time.monotonic()
    deadline = started + WHOLE_RUN_S if time_boxes else math.inf
    statuses = {}
    for section in sections():
        if args.only and section.name not in args.only:
            continue
        # a section that overran shortens the next ones: the whole run keeps its limit
        left = deadline - time.monotonic()
        if left <= 0:
            report.write(
                f"\n## {section.title}\n\nnot run: the run's {WHOLE_RUN_S} s are spent "
                f"(rerun it with --only {section.name})"
            )
            statuses[section.name] = "not run"
            continue
        if time_boxes:
            box = min(boxes.get(section.name, section.box), left)
            statuses[section.name] = run_section(section, settings, report, box, min(grace(box), left - box))
        else:
            statuses[section.name] = run_section(section, settings, report, math.inf, math.inf)
    report.write(
        f"\n_whole run: {time.monotonic() - started:.1f} s; "
        + ", ".join(f"{name} {status}" for name, status in statuses.items())
        + "_"
    )
    return 0 if all(status == "done" for status in statuses.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
