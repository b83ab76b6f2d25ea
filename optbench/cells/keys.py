"""Content keys: one short hash of a cell's fully resolved settings.

The key is a SHA-256 of canonical JSON, so it does not depend on the order in which dict keys (or
flags) were given, and it keeps every value's type and exact value:

- an int and a float are different (`1` and `1.0` make two keys): JSON writes them differently;
- ints stay exact at any size (seeds 2**54 and 2**54 + 1 are two cells; casting to float would round
  both to one);
- booleans are not ints (`True` and `1` make two keys);
- floats are written with `repr`, which round-trips every float64 exactly (`-0.0`, `nan`, `inf`
  included);
- tuples and lists are the same sequence; numpy scalars count as the Python number they hold.

Anything else (a class, a tensor) is refused with TypeError: a key built from `str(value)` could
silently merge two different settings.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers

KEY_LENGTH = 16  # hex digits: 64 bits, so two settings of one study collide with odds ~ n^2 / 2^65


def canonical(value):
    """`value` as plain JSON types, dict keys sorted by `content_key`; raises TypeError on anything
    without one exact JSON form (dict keys must be strings)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)  # numpy ints too; Python ints are exact at any size
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else {"float": repr(number)}  # JSON has no nan/inf
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"cell settings need string keys, got {sorted(map(repr, value))}")
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    raise TypeError(f"cannot key a cell on {type(value).__name__} value {value!r}")


def canonical_text(settings) -> str:
    """The one text the key hashes: canonical JSON, keys sorted, no spaces."""
    return json.dumps(canonical(settings), sort_keys=True, separators=(",", ":"), allow_nan=False)


def content_key(settings) -> str:
    """A 16-hex-digit hash of `settings` (a dict of JSON-like values): equal settings, equal key."""
    return hashlib.sha256(canonical_text(settings).encode()).hexdigest()[:KEY_LENGTH]
