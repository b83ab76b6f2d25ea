"""The one exception type for user mistakes.

Anything raised as `OptbenchError` is printed by the CLI as one red line on stderr and exits
with status 2; everything else is a bug and shows a traceback.
"""


class OptbenchError(Exception):
    """A problem with the user's input (names, numbers, files), not a bug in optbench."""


def did_you_mean(kind: str, name: str, valid) -> OptbenchError:
    """'unknown optimizer 'adma'; did you mean 'adam'? (valid: ...)'."""
    import difflib

    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return OptbenchError(f"unknown {kind} '{name}'{hint} (valid: {', '.join(valid)})")
