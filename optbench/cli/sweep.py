"""`optbench sweep --batch-size 16,64,256 --lr-scale linear`: batch-size x lr-scaling studies.

Every cell (one setting, one seed) is saved the moment it finishes; rerunning the same command
skips finished cells. Any optimizer hyperparameter may be given as a comma list (`--momentum
0,0.9`) and becomes another grid axis. `--config sweep.yaml` holds the same options (keys are the
option names, `batch_size` or `batch-size`; extra hyperparameters under `hparams:`); flags given
on the command line override it.
"""

from __future__ import annotations

from pathlib import Path

import rich_click as click
from click.core import ParameterSource
from rich.table import Table

from ..errors import OptbenchError, closest
from ..specs import parse_number_list, parse_value
from .common import console, console_err, format_number, formats_option, out_option, parse_formats, progress_bar

LIST_HELP = "comma-separated"


@click.command("sweep", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="A YAML file with the same options; command-line flags override it.")
@click.option("--batch-size", default="16,64,256", show_default=True, help="Batch sizes, comma-separated.")
@click.option("--lr-scale", default="linear", show_default=True,
              help="lr-scaling rules, comma-separated: linear (lr·B/B0), sqrt (lr·√(B/B0)), none.")
@click.option("--optimizer", "optimizers", multiple=True, default=("momentum",), show_default=True,
              help="Optimizer spec; repeat for several (e.g. --optimizer sgd --optimizer adam).")
@click.option("--task", default="digits", show_default=True,
              help="digits, mnist, fashion-mnist, cifar10 (--data-dir), regression, or surface:NAME.")
@click.option("--model", default="lenet", show_default=True, help="Model for image tasks: mlp, lenet, resnet.")
@click.option("--data-dir", default=None, help="Folder with MNIST/Fashion-MNIST/CIFAR-10 files.")
@click.option("--base-lr", type=float, default=None,
              help="The lr at --base-batch-size (default: the optimizer spec's lr, else the task's default).")
@click.option("--base-batch-size", type=int, default=None, help="B0 of the scaling rules (default: smallest batch).")
@click.option("--warmup-epochs", type=int, default=0, show_default=True, help="Linear lr warm-up (training tasks).")
@click.option("--epochs", type=int, default=None, help="Epochs per cell (instead of --steps).")
@click.option("--steps", type=int, default=None, help="Optimizer steps per cell, the same for every batch size (training default 400).")
@click.option("--seeds", type=int, default=1, show_default=True, help="Seeds per setting: seed, seed+1, ...")
@click.option("--seed", type=int, default=0, show_default=True, help="First seed.")
@click.option("--target-accuracy", type=float, default=None, help="Count steps until validation accuracy reaches this (image tasks default 0.9).")
@click.option("--target-loss", type=float, default=None, help="Count steps until the evaluated loss falls to this.")
@click.option("--evaluations", type=int, default=None,
              help="Image tasks: validation evaluations per cell, evenly spaced (default 400; every step for shorter budgets).")
@click.option("--noise", type=float, default=1.0, show_default=True,
              help="surface tasks: per-sample gradient noise std (batch B divides the variance by B).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N (training tasks).")
@click.option("--jobs", type=int, default=1, show_default=True, help="Cells run in this many processes.")
@click.option("--shard", default=None, metavar="I/N", help="Run only shard I of N (1-based), e.g. for an array job.")
@click.option("--force", is_flag=True, help="Run a changed spec in an existing --out; redo corrupt cells.")
@formats_option
@out_option
@click.pass_context
def command(ctx, config_path, **flags):
    """Sweep batch sizes and lr-scaling rules; steps to target, critical batch size, plots.

    Extra hyperparameters are grid axes: `--momentum 0,0.9`, `--weight-decay 0,5e-4`, `--lr 0.01,0.1`
    (an lr list replaces --base-lr).
    """
    from ..runners.sweep import check_folder, expand, finished_keys, run_sweep, shard_cells

    options = resolve_options(ctx, config_path, flags)
    spec = build_spec(options)
    formats = parse_formats(options["formats"])
    shard = parse_shard(options["shard"])
    from ..results import output_folder
    folder = output_folder(options["out"], "sweep")
    cells = shard_cells(expand(spec), shard)
    check_folder(folder, spec, options["force"])        # refusals and corrupt cells: before the bar
    finished_keys(folder, cells, options["force"])

    with progress_bar() as bar:
        task = bar.add_task("sweep", total=len(cells), status="")

        def report(cell, status):
            label = f"{cell['optimizer']} {cell['lr_scale']} B={cell['batch_size']} seed={cell['seed']}"
            bar.update(task, advance=1, status=f"{status.split(':')[0]}: {label}")
        outcome = run_sweep(spec, folder, jobs=options["jobs"], shard=shard, force=options["force"],
                            progress=report)

    console_err.print(f"{len(outcome.computed)} cell(s) computed, {len(outcome.skipped)} already finished "
                      f"(skipped), {len(outcome.failed)} failed; {len(outcome.cells)} in this "
                      f"{'shard' if shard != (1, 1) else 'sweep'}"
                      + (f"; {len(outcome.shared)} of the computed copied the run of a cell with the same settings"
                         if outcome.shared else ""))
    if not outcome.summary.empty:
        console.print(summary_table(outcome.summary, spec))
        for line in critical_lines(outcome.critical):
            console.print(line)
        from ..plots.sweeps import draw
        for path in draw(folder, outcome.table, outcome.summary, outcome.critical, formats):
            console.print(f"wrote {path}")
    console.print(f"results in {folder}")
    for key, error in outcome.failed.items():
        console_err.print(f"[bold red]cell {key} failed:[/] {error}", highlight=False, soft_wrap=True)
    if outcome.failed:
        ctx.exit(1)


# --- options: defaults < config file < command line -------------------------------------------

CONFIG_ALIASES = {"optimizer": "optimizers", "batch_sizes": "batch_size", "lr_scales": "lr_scale",
                  "format": "formats"}


def resolve_options(ctx, config_path, flags: dict) -> dict:
    options = dict(flags)
    config = read_config(config_path, set(flags)) if config_path else {}
    for name, value in config.items():
        if name == "hparams":
            continue
        if ctx.get_parameter_source(name) != ParameterSource.COMMANDLINE:
            options[name] = value
    hparams = {name: _hparam_values(name, values) for name, values in (config.get("hparams") or {}).items()}
    hparams.update(parse_extra_args(ctx.args, set(flags)))
    options["hparams"] = hparams
    return options


def read_config(path: str, valid: set) -> dict:
    import yaml

    file = Path(path)
    if not file.is_file():
        raise OptbenchError(f"config file not found: {file}")
    try:
        loaded = yaml.safe_load(file.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise OptbenchError(f"{file} is not valid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(loaded, dict):
        raise OptbenchError(f"{file} must hold a mapping of option: value, not a {type(loaded).__name__}")
    allowed = (valid - {"force"}) | {"hparams"}
    config = {}
    for raw_key, value in loaded.items():
        key = CONFIG_ALIASES.get(str(raw_key).replace("-", "_"), str(raw_key).replace("-", "_"))
        if key not in allowed:
            guess = closest(str(raw_key), sorted(allowed))
            hint = f"; did you mean '{guess}'?" if guess else ""
            raise OptbenchError(f"{file}: unknown key '{raw_key}'{hint} "
                                f"(valid: {', '.join(sorted(allowed))}; extra hyperparameters go under 'hparams:')")
        if key == "hparams" and not isinstance(value, dict):
            raise OptbenchError(f"{file}: 'hparams' must map a hyperparameter name to a list of values")
        if key in ("batch_size", "lr_scale") and isinstance(value, list):
            value = ",".join(map(str, value))
        if key == "optimizers":
            value = tuple(value) if isinstance(value, list) else (value,)
        config[key] = value
    return config


def parse_extra_args(args: list[str], known: set) -> dict:
    """['--momentum', '0,0.9', '--weight-decay=0,1e-4'] -> {'momentum': [0, 0.9], 'weight_decay': [...]}."""
    hparams, items = {}, list(args)
    while items:
        item = items.pop(0)
        if not item.startswith("--") or len(item) == 2:
            raise OptbenchError(f"unexpected argument '{item}' (hyperparameter lists look like --momentum 0,0.9)")
        name, eq, text = item[2:].partition("=")
        if not eq:
            if not items or items[0].startswith("--"):
                raise OptbenchError(f"--{name} needs a comma-separated list of values")
            text = items.pop(0)
        key = name.replace("-", "_")
        guess = closest(name, sorted(n.replace("_", "-") for n in known))
        if guess and guess != name:
            raise OptbenchError(f"no such option '--{name}'; did you mean '--{guess}'?")
        hparams[key] = _hparam_values(f"--{name}", text)
    return hparams


def _hparam_values(name: str, values) -> list:
    if isinstance(values, list):
        values = ",".join(str(v) for v in values)
    items = [item.strip() for item in str(values).split(",")]
    if any(item == "" for item in items):
        raise OptbenchError(f"malformed list for {name}: '{values}' has an empty item")
    parsed = [parse_value(item) for item in items]
    for item, value in zip(items, parsed):
        if isinstance(value, str):
            raise OptbenchError(f"malformed list for {name}: '{item}' is not a number")
    return parsed


def build_spec(options: dict):
    from ..runners.sweep import SweepSpec, task_kind

    rules = [item.strip().lower() for item in str(options["lr_scale"]).split(",")]
    if any(rule == "" for rule in rules):
        raise OptbenchError(f"malformed list for --lr-scale: '{options['lr_scale']}' has an empty item")
    return SweepSpec(
        batch_sizes=tuple(parse_number_list(options["batch_size"], int, "--batch-size", positive=True)),
        lr_scales=tuple(rules), optimizers=tuple(options["optimizers"]), hparams=options["hparams"],
        task=options["task"], model=options["model"], base_lr=options["base_lr"],
        base_batch_size=options["base_batch_size"], warmup_epochs=options["warmup_epochs"],
        epochs=options["epochs"], steps=options["steps"], seeds=options["seeds"], seed=options["seed"],
        noise=options["noise"], device=options["device"], data_dir=options["data_dir"],
        evaluations=options["evaluations"],
        target_accuracy=_default_target(options, task_kind(options["task"])), target_loss=options["target_loss"])


def _default_target(options: dict, kind: str):
    """Steps-to-target is the point of a batch-size study: classification gets 90% unless told."""
    if kind == "training" and options["target_accuracy"] is None and options["target_loss"] is None:
        return 0.9
    return options["target_accuracy"]


def parse_shard(text: str | None) -> tuple[int, int]:
    if text is None:
        return (1, 1)
    index, slash, count = str(text).partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        shard = None
    if not slash or shard is None or not 1 <= shard[0] <= shard[1]:
        raise OptbenchError(f"--shard must be I/N with 1 <= I <= N (e.g. 2/4), got '{text}'")
    return shard


# --- reporting --------------------------------------------------------------------------------

def summary_table(summary, spec) -> Table:
    seeds = summary["seed"].nunique()
    targets = [f"accuracy >= {spec.target_accuracy:g}" if spec.target_accuracy is not None else "",
               f"loss <= {spec.target_loss:g}" if spec.target_loss is not None else ""]
    target = " and ".join(t for t in targets if t) or "no target given"
    title = f"sweep on {spec.task}: target {target}" + (f" (median of {seeds} seeds)" if seeds > 1 else "")
    table = Table(title=title, title_justify="left", pad_edge=False)
    has_accuracy = summary["final_accuracy"].notna().any()
    has_target = spec.target_accuracy is not None or spec.target_loss is not None
    # Short two-line headings keep every column readable in an 80-column terminal; without a target
    # the →target columns would only say "never". samples/s and the rest are in summary.parquet.
    columns = ["optimizer", "rule", "B", "lr", "final\nacc" if has_accuracy else "final\nloss",
               *(["steps\n→target", "samples\n→target"] if has_target else []), "time\n(s)", "diverged"]
    widths = {"B": 4, "lr": 6, "final\nloss": 8}
    for column in columns:
        width = max(max(map(len, column.split("\n"))), widths.get(column, 0))
        table.add_column(column, justify="left" if column in ("optimizer", "rule") else "right",
                         no_wrap=True, min_width=width)
    extra = [c for c in summary.columns if c not in _KNOWN]
    for keys, rows in summary.groupby(["optimizer", *extra, "lr_scale", "batch_size"], sort=False, dropna=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        label = keys[0] + "".join(f" {name}={value}" for name, value in zip(extra, keys[1:-2]))
        reached = rows["steps_to_target"].notna().all()
        to_target = [format_number(round(rows["steps_to_target"].median(), 1)) if reached else "never",
                     format_number(round(rows["samples_to_target"].median())) if reached else "never"]
        table.add_row(
            label, keys[-2], str(keys[-1]), format_number(rows["lr"].iloc[0]),
            format_number(rows["final_accuracy" if has_accuracy else "final_loss"].median()),
            *(to_target if has_target else []),
            format_number(rows["wall_time"].median()),
            f"{int(rows['diverged'].sum())}/{len(rows)}" if rows["diverged"].any() else "no")
    return table


_KNOWN = {"cell", "task", "optimizer", "family", "optimizer_spec", "lr_scale", "batch_size", "base_batch_size",
          "base_lr", "lr", "seed", "steps", "samples", "final_loss", "final_accuracy", "best_accuracy",
          "steps_to_target", "samples_to_target", "target_accuracy", "target_loss", "wall_time", "train_time",
          "samples_per_s", "diverged", "noise_scale_start", "noise_scale_end"}


def critical_lines(critical) -> list[str]:
    if critical.empty:
        return ["critical batch size: no target given or too few batch sizes reached it "
                "(give --target-accuracy or --target-loss)"]
    lines = []
    for _, row in critical.iterrows():
        if row["lr_scale"] != "best rule":
            continue
        if row["points"] < 3:
            lines.append(f"critical batch size ({row['optimizer']}): needs >= 3 batch sizes reaching the "
                         f"target, got {row['points']}")
            continue
        edge = " (at the edge of the fit: the data do not bracket it)" if row["at_edge"] else ""
        lines.append(f"critical batch size ({row['optimizer']}, best rule per batch size): "
                     f"~{format_number(row['critical_batch_size'])}{edge}; S_min ~ {format_number(row['s_min'])} "
                     f"steps, E_min ~ {format_number(row['e_min'])} samples")
    row = critical.iloc[0]
    lines.append(f"gradient noise scale B_simple (median over the base-batch-size cells): "
                 f"{format_number(row['noise_scale_start'])} at the start, "
                 f"{format_number(row['noise_scale_end'])} at the end")
    lines.append(f"[dim]critical batch: {row['method']}. noise scale: {row['noise_method']}.[/]")
    return lines
