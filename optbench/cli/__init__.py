"""The `optbench` command: parse, call, report. The only package that imports click and rich, and the
only place that chooses a matplotlib backend (in `entry`, never at import).

Each command lives in its own module here and is listed in `COMMANDS`; a command's module is imported
only when that command runs (or shows its help), and each module imports torch, pandas and matplotlib
inside its callback, so `optbench --help`, `optbench COMMAND --help` and argument errors answer without
loading them (benchmarks/startup.py measures it). A user error (`OptbenchError`, or a click usage
error) prints one red line on stderr and exits with status 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import signal
import sys

import rich_click as click
from rich.markup import escape

from ..errors import OptbenchError
from .common import console_err

click.rich_click.TEXT_MARKUP = "markdown"
click.rich_click.TEXT_EMOJIS = False  # ":100:" in a range like 1e-4:100:49 must stay text

# command name -> (its module here, the one-line summary `optbench --help` lists without importing it;
# tests/test_startup.py checks each summary against the command's own docstring)
COMMANDS = {
    "list": (
        "listing",
        "List the optimizers with their certificate's reference, defaults and how surfaces batch trials.",
    ),
    "verify": (
        "verify",
        "Prove ours == torch.optim for every flag combination of each algorithm (all by default).",
    ),
    "compare": ("compare", "Run each optimizer on a surface and compare trajectories, losses and metrics."),
    "grid": ("grid", "Map final loss over a grid of two hyperparameters, run as one batched tensor."),
    "plot": ("plot", "Redraw the figures of saved results folders without re-running anything."),
    "train": ("train", "Train with one or more optimizers; tables, curves and meta.json go to --out."),
    "sweep": (
        "sweep",
        "Sweep batch sizes and lr-scaling rules; steps to target, critical batch size, plots.",
    ),
    "bench": (
        "bench",
        "Benchmark optimizers fairly over a suite of tasks: equal tuning, seeds, performance profiles.",
    ),
}


class _Summary(click.RichCommand):
    """A command's name and summary for the group's help page, standing in for its unimported module."""

    def __init__(self, name: str, summary: str):
        super().__init__(name, help=summary, short_help=summary)


class OptbenchGroup(click.RichGroup):
    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """click's main, with its usage errors printed as one line too (exit status 2), so that
        `entry` and an in-process `CliRunner().invoke(main, ...)` behave alike."""
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            console_err.print(
                "[bold red]stopped:[/] finished runs are kept; rerun the same command to resume",
                highlight=False,
            )
            sys.exit(128 + _stopped_by.get("signal", signal.SIGINT))  # 130 for Ctrl-C, 143 for SIGTERM
        except click.exceptions.ClickException as error:
            console_err.print(
                f"[bold red]error:[/] {escape(one_line(error.format_message()))}",
                highlight=False,
                soft_wrap=True,
            )
            sys.exit(error.exit_code)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        """The command as the help page lists it; `resolve_command` loads the one that runs."""
        return _Summary(name, COMMANDS[name][1]) if name in COMMANDS else None

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, _Summary):
            command = load_command(name)
        return name, command, rest

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except OptbenchError as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            console_err.print(
                f"[bold red]error:[/] {escape(one_line(str(error)))}", highlight=False, soft_wrap=True
            )
            sys.exit(2)


@click.group(cls=OptbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.version_option(package_name="optbench")
@click.pass_context
def main(ctx, debug):
    """Benchmark and visualize gradient-based optimizers, certified equal to torch.optim."""
    ctx.ensure_object(dict)["debug"] = debug


def load_command(name: str) -> click.Command:
    """The click command `name` (a key of COMMANDS), importing its module."""
    return importlib.import_module(f"{__name__}.{COMMANDS[name][0]}").command


def one_line(message: str) -> str:
    """A message as one line: a value that holds newlines (a path, a pasted spec) must not split it, and
    a control character (a terminal escape sequence in a name) is shown as its escape, never sent raw."""
    text = " ".join(message.split())
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)


def entry(argv=None):
    """Console-script entry point: `main` with Agg as matplotlib's backend.

    The command only writes figure files, so it draws with Agg; chosen here, at run time, so that
    importing optbench.cli leaves a notebook's backend alone.
    """
    import matplotlib  # the backend is chosen before any command can import pyplot

    matplotlib.use("Agg")
    signal.signal(signal.SIGTERM, _interrupt)  # a scheduler's time limit stops a run as Ctrl-C does
    main.main(args=argv)


_stopped_by = {}  # the signal that stopped the command, for its exit status


def _interrupt(signum, frame):
    _stopped_by["signal"] = signum
    raise KeyboardInterrupt
