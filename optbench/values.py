"""Values given as text: one hyperparameter's value checked against the kind its default says
(number, count, flag, tuple, choice), number lists ('16,64,256') and ranges ('1e-4:1:64:log').

Each check raises OptbenchError naming the value as given, before any work starts.
"""

from __future__ import annotations

import math

import torch

from .errors import OptbenchError, did_you_mean


def parse_value(text: str):
    lowered = text.strip().lower()
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    if lowered in ("none", "null"):
        return None
    if "/" in text:
        return tuple(parse_value(part) for part in text.split("/"))
    try:
        number = float(text)
    except ValueError:
        return text.strip()  # a string option such as line_search_fn=strong_wolfe
    return int(number) if number.is_integer() and "." not in text and "e" not in lowered else number


def format_value(value) -> str:
    """A hyperparameter value as `parse_value` reads it back: 0.1 -> '0.1', (0.9, 0.99) -> '0.9/0.99'."""
    if isinstance(value, (tuple, list)):
        return "/".join(format_value(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    return repr(float(value)) if isinstance(value, float) else str(value)


def named_settings(settings: str, text: str, allowed, what: str, malformed: str = "malformed setting"):
    """Yield (name, raw value, the item as given) for each 'name=value' of `settings` (comma-separated).

    Raises OptbenchError for an empty item ('lr=0.1,,momentum=0.9'), an item without '=' or a value
    ('{malformed} ... expected name=value'), and
    for a name not in `allowed` (with the nearest valid one, naming it a `what`).
    """
    items = settings.split(",") if settings else []
    if "" in (item.strip() for item in items):
        raise OptbenchError(f"malformed settings in '{text}': an empty item between commas")
    for item in items:
        name, eq, raw = item.partition("=")
        name = name.strip()
        if not eq or not raw.strip():
            raise OptbenchError(f"{malformed} '{item}' in '{text}': expected name=value")
        if name not in allowed:
            raise did_you_mean(what, name, allowed)
        yield name, raw, item


# Hyperparameters with a fixed set of values; None is torch's "off".
CHOICES = {"line_search_fn": (None, "strong_wolfe"), "adjust_lr_fn": (None, "original", "match_rms_adamw")}
# Counts (whole numbers) -> their smallest sensible value; their defaults may be None or look like floats.
COUNTS = {
    "max_iter": 1,
    "max_eval": 1,
    "history_size": 1,
    "ns_steps": 1,
    "k": 1,
    "warmup_steps": 0,
    "precondition_frequency": 1,
    "max_precondition_dim": 1,
}


def hyperparameter_kind(name: str, default) -> str:
    """'choice', 'count', 'flag' (true/false), 'tuple', 'text', 'number' or 'code' (set from Python only)."""
    if name in CHOICES:
        return "choice"
    if name in COUNTS:
        return "count"
    if isinstance(default, bool):
        return "flag"
    if isinstance(default, tuple):
        return "tuple"
    if isinstance(default, str):
        return "text"
    if callable(default):
        return "code"
    return "number"


def check_hyperparameter(name: str, value, default, given: str, text: str):
    """`value` (as `parse_value` read it) checked against the kind of hyperparameter `name` is; returns it
    normalised (a whole float count as int). Raises OptbenchError naming `given` ('lr=1e400') and `text`.

    Numbers must be finite unless the default itself is infinite (Prodigy's growth_rate); booleans are
    not numbers; a tuple has its default's length."""
    kind = hyperparameter_kind(name, default)
    where = f"{given} in '{text}'"
    if kind == "choice":
        if value not in CHOICES[name]:
            valid = ", ".join("none" if choice is None else choice for choice in CHOICES[name])
            raise OptbenchError(f"{where}: {name} must be one of {valid}")
        return value
    if kind == "count":
        if value is None and default is None:
            return None
        minimum = COUNTS[name]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value != int(value)
            or value < minimum
        ):
            raise OptbenchError(f"{where}: {name} must be a whole number >= {minimum}")
        return int(value)
    if kind == "flag":
        if not isinstance(value, bool):
            raise OptbenchError(f"{where}: {name} must be true or false")
        return value
    if kind == "tuple":
        if not isinstance(value, tuple) or len(value) != len(default):
            example = "/".join(format_value(v) for v in default)
            raise OptbenchError(
                f"{where}: {name} must be {len(default)} values separated by '/', e.g. {example}"
            )
        # a whole number where the default holds a float is that float: torch.optim.Adam takes betas
        # as two floats (or two tensors) and refuses (0, 0.999)
        checked = [
            check_hyperparameter(name, v, d, given, text) if d is not None or v is not None else None
            for v, d in zip(value, default, strict=False)
        ]
        return tuple(
            float(v) if isinstance(d, float) and type(v) is int else v
            for v, d in zip(checked, default, strict=False)
        )
    if kind == "text":
        if value is None:
            return "none"
        if not isinstance(value, str):
            raise OptbenchError(f"{where}: {name} must be a word such as '{default}'")
        return value
    if kind == "code":
        raise OptbenchError(f"{where}: {name} takes a Python function; set it from Python")
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptbenchError(f"{where} is not a number")
    infinite_default = isinstance(default, float) and math.isinf(default)
    if math.isnan(value) or (math.isinf(value) and not infinite_default):
        raise OptbenchError(f"{where} is not a finite number")
    return value


def parse_number_list(text: str, kind=float, name: str = "value", positive: bool = False) -> list:
    """'16,64,256' -> [16, 64, 256]; empty items, non-numbers and (if asked) non-positive numbers
    are errors."""
    items = [item.strip() for item in str(text).split(",")]
    if not text or any(item == "" for item in items):
        raise OptbenchError(f"malformed list for {name}: '{text}' has an empty item")
    values = []
    for item in items:
        try:
            value = kind(float(item)) if kind is int else kind(item)
        except ValueError:
            raise OptbenchError(f"malformed list for {name}: '{item}' is not a number") from None
        if kind is int and float(item) != int(float(item)):
            raise OptbenchError(f"malformed list for {name}: '{item}' is not a whole number")
        if not math.isfinite(value):
            raise OptbenchError(f"malformed list for {name}: '{item}' is not finite")
        if positive and value <= 0:
            raise OptbenchError(f"{name} must be positive, got {item}")
        values.append(value)
    return values


def parse_range(text: str, name: str = "range") -> list[float]:
    """'START:STOP:NUM[:log|lin]' -> NUM values from START to STOP inclusive.

    Log-spaced by default when 0 < START and STOP/START >= 100 (learning rates), else linear.
    Raises OptbenchError for a malformed text, non-finite ends, NUM < 2 or STOP <= START.
    """
    start, stop, num, scale = range_parts(text, name)
    if scale == "log":
        return torch.logspace(math.log10(start), math.log10(stop), num, dtype=torch.float64).tolist()
    return torch.linspace(start, stop, num, dtype=torch.float64).tolist()


def range_parts(text: str, name: str = "range") -> tuple[float, float, int, str]:
    """'START:STOP:NUM[:log|lin]' -> (START, STOP, NUM, 'log' or 'lin'), checked, without making the
    values: callers estimate the cost of NUM points before asking for them."""
    parts = str(text).split(":")
    if len(parts) not in (3, 4):
        raise OptbenchError(f"malformed {name} '{text}': expected START:STOP:NUM[:log|lin]")
    try:
        start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise OptbenchError(
            f"malformed {name} '{text}': START and STOP must be numbers, NUM a whole number"
        ) from None
    if not (math.isfinite(start) and math.isfinite(stop)):
        raise OptbenchError(f"{name} '{text}': START and STOP must be finite numbers")
    if num < 2:
        raise OptbenchError(f"{name} '{text}' needs at least 2 points")
    if not stop > start:
        raise OptbenchError(f"{name} '{text}': STOP must be larger than START")
    scale = parts[3].lower() if len(parts) == 4 else ("log" if start > 0 and stop / start >= 100 else "lin")
    if scale not in ("log", "lin"):
        raise OptbenchError(f"{name} '{text}': spacing must be 'log' or 'lin', not '{parts[3]}'")
    if scale == "log" and start <= 0:
        raise OptbenchError(f"{name} '{text}': a log range needs START > 0")
    return start, stop, num, scale


def axis_values(name: str, values) -> list:
    """The values of a hyperparameter axis: a list as it is, one number, "0,0.9", or a range
    "START:STOP:NUM[:log|lin]" (`values.parse_range`); malformed text is an OptbenchError."""
    if isinstance(values, (list, tuple)):
        return list(values)
    if not isinstance(values, str):
        return [values]
    if ":" in values:
        return parse_range(values, name)
    items = [item.strip() for item in values.split(",")]
    parsed = [parse_value(item) for item in items]
    bad = next((item for item, value in zip(items, parsed, strict=True) if isinstance(value, str)), None)
    if bad is not None:
        raise OptbenchError(f"malformed list for {name}: '{bad}' is not a number")
    return parsed
