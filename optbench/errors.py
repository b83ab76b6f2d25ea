"""The one exception type for user mistakes.

Anything raised as `OptbenchError` is printed by the CLI as one red line on stderr and exits
with status 2; everything else is a bug and shows a traceback.
"""

from contextlib import contextmanager


class OptbenchError(Exception):
    """A problem with the user's input (names, numbers, files), not a bug in optbench."""


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: typos, missing letters and swapped neighbours cost 1."""
    rows = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
    return rows[len(a)][len(b)]


def closest(name: str, valid) -> str | None:
    """The valid name a typo most likely meant, or None when nothing is close."""
    scored = sorted((edit_distance(name.lower(), v.lower()), v) for v in valid)
    if scored and scored[0][0] <= max(1, len(name) // 3):
        return scored[0][1]
    return None


def did_you_mean(kind: str, name: str, valid) -> OptbenchError:
    """ "unknown optimizer 'adma'; did you mean 'adam'? (valid: ...)"."""
    valid = sorted(valid)
    guess = closest(name, valid)
    hint = f"; did you mean '{guess}'?" if guess else ""
    return OptbenchError(f"unknown {kind} '{name}'{hint} (valid: {', '.join(valid)})")


def failure(error: BaseException) -> str:
    """The one line a failed run is recorded with: 'ValueError: step 6 exploded'. A user's optimizer
    that raises fails its own run only; the message may be multi-line, the record is not."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@contextmanager
def recorded_failure(spec, failed: dict):
    """Record in `failed` (name -> `failure` line) the exception of a user's class (a `specs.OptimizerSpec`
    with an `origin`) that fails its run, so the other runs keep going; optbench's own algorithms
    raising is a bug, and propagates."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - only a user's class may fail a run; ours are bugs
        if spec.origin is None:
            raise
        failed[spec.name] = failure(error)


def check_some_finished(parts: list, failed: dict) -> None:
    """OptbenchError naming each failure when no run finished: there is no table to save."""
    if not parts:
        raise OptbenchError(
            "every run failed: " + "; ".join(f"{name}: {message}" for name, message in failed.items())
        )
