"""`optbench sweep`'s options: defaults < a YAML config file < the command line, into a SweepSpec.

Keys of the config file are the option names (`batch_size` or `batch-size`); extra hyperparameter
lists go under `hparams:`. Every value is checked with the option's own type, naming the key.
"""

from __future__ import annotations

from pathlib import Path

import rich_click as click
from click.core import ParameterSource

from ..bounded import load_yaml
from ..errors import OptbenchError, closest
from ..optimizers.registry import check_spec_name
from ..tasks.names import check_task_name

CONFIG_ALIASES = {
    "optimizer": "optimizers",
    "batch_sizes": "batch_size",
    "lr_scales": "lr_scale",
    "format": "formats",
}


def resolve_options(ctx, config_path, flags: dict) -> dict:
    """The options of the command line over the config file's over the defaults; the task's and the
    optimizers' names are checked first, before anything loads torch."""
    options = dict(flags)
    config = read_config(ctx, config_path) if config_path else {}
    for name, value in config.items():
        if name != "hparams" and ctx.get_parameter_source(name) != ParameterSource.COMMANDLINE:
            options[name] = value
    for text in options["optimizers"]:
        check_spec_name(text)
    check_task_name(options["task"])
    hparams = {
        name: hparam_values(f"hparams: {name}", values)
        for name, values in (config.get("hparams") or {}).items()
    }
    hparams.update(parse_extra_args(ctx.args, set(flags)))
    options["hparams"] = hparams
    return options


def read_config(ctx, path: str) -> dict:
    file = Path(path)
    if not file.exists():
        raise OptbenchError(f"config file not found: {file}")
    loaded = load_yaml(file) or {}
    if not isinstance(loaded, dict):
        raise OptbenchError(f"{file} must hold a mapping of option: value, not a {type(loaded).__name__}")
    params = {p.name: p for p in ctx.command.params if p.name not in ("force", "config_path")}
    allowed = sorted(set(params) | {"hparams"})
    config = {}
    for raw_key, value in loaded.items():
        key = str(raw_key).replace("-", "_")
        key = CONFIG_ALIASES.get(key, key)
        if key not in allowed:
            guess = closest(str(raw_key), allowed)
            hint = f"; did you mean '{guess}'?" if guess else ""
            raise OptbenchError(
                f"{file}: unknown key '{raw_key}'{hint} "
                f"(valid: {', '.join(allowed)}; extra hyperparameters go under 'hparams:')"
            )
        config[key] = _config_value(ctx, file, raw_key, key, value, params.get(key))
    return config


def _config_value(ctx, file: Path, raw_key, key: str, value, param):
    if key == "hparams":
        if not isinstance(value, dict):
            raise OptbenchError(f"{file}: 'hparams' must map a hyperparameter name to a list of values")
        return value
    if key == "optimizers":
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(item, str) for item in items):
            raise OptbenchError(
                f"{file}: optimizer must be a spec such as 'adam:lr=0.01' or a list of them, got {value!r}"
            )
        return tuple(items)
    if key in ("batch_size", "lr_scale") and isinstance(value, list):
        value = ",".join(map(str, value))
    if value is None:
        return None
    if isinstance(value, (dict, list)) or (
        isinstance(value, bool) and not isinstance(param.type, click.types.BoolParamType)
    ):
        raise OptbenchError(f"{file}: {raw_key} must be a single value, got {value!r}")
    if isinstance(param.type, click.types.IntParamType) and isinstance(value, float):
        raise OptbenchError(f"{file}: {raw_key} must be a whole number, got {value!r}")
    try:
        return param.type_cast_value(ctx, value)
    except click.BadParameter as error:
        raise OptbenchError(f"{file}: {raw_key}: {error.message}") from None


def parse_extra_args(args: list[str], known: set) -> dict:
    """['--momentum', '0,0.9', '--weight-decay=0,1e-4'] -> {'momentum': [0, 0.9], 'weight_decay': [...]}."""
    hparams, items = {}, list(args)
    while items:
        item = items.pop(0)
        if not item.startswith("--") or len(item) == 2:
            raise OptbenchError(
                f"unexpected argument '{item}' (hyperparameter lists look like --momentum 0,0.9)"
            )
        name, eq, text = item[2:].partition("=")
        if not eq:
            if not items or items[0].startswith("--"):
                raise OptbenchError(f"--{name} needs a comma-separated list of values")
            text = items.pop(0)
        guess = closest(name, sorted(n.replace("_", "-") for n in known))
        if guess and guess != name:
            raise OptbenchError(f"no such option '--{name}'; did you mean '--{guess}'?")
        hparams[name.replace("-", "_")] = hparam_values(f"--{name}", text)
    return hparams


def hparam_values(name: str, values) -> list:
    """A hyperparameter list as `optbench.sweep` takes it: "0,0.9", a range "1e-4:1:16", or a list."""
    from ..values import axis_values

    if isinstance(values, list):
        values = ",".join(str(v) for v in values)
    if any(item.strip() == "" for item in str(values).split(",")):
        raise OptbenchError(f"malformed list for {name}: '{values}' has an empty item")
    return axis_values(name, str(values))


def build_spec(options: dict):
    """The `SweepSpec` of the resolved options; malformed lists are user errors naming the option."""
    from ..sweeps import SweepSpec
    from ..values import parse_number_list

    rules = [item.strip().lower() for item in str(options["lr_scale"]).split(",")]
    if any(rule == "" for rule in rules):
        raise OptbenchError(f"malformed list for --lr-scale: '{options['lr_scale']}' has an empty item")
    batch_sizes = parse_number_list(str(options["batch_size"]), float, "--batch-size", positive=True)

    for text, value in zip(str(options["batch_size"]).split(","), batch_sizes, strict=False):
        if value != int(value):
            raise OptbenchError(f"malformed list for --batch-size: '{text.strip()}' is not a whole number")
    for name, values in (("--batch-size", [int(b) for b in batch_sizes]), ("--lr-scale", rules)):
        repeated = next((value for value in values if values.count(value) > 1), None)
        if repeated is not None:
            raise OptbenchError(f"{name} lists {repeated} twice")
    return SweepSpec(
        batch_sizes=tuple(int(b) for b in batch_sizes),
        lr_scales=tuple(rules),
        optimizers=tuple(options["optimizers"]),
        hparams=options["hparams"],
        task=options["task"],
        model=options["model"],
        base_lr=options["base_lr"],
        base_batch_size=options["base_batch_size"],
        warmup_epochs=options["warmup_epochs"],
        epochs=options["epochs"],
        steps=options["steps"],
        seeds=options["seeds"],
        seed=options["seed"],
        noise=options["noise"],
        device=options["device"],
        data_dir=options["data_dir"],
        evaluations=options["evaluations"],
        threads=options["threads"],
        target_accuracy=options["target_accuracy"],
        target_loss=options["target_loss"],
    )


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
