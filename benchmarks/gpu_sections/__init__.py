"""The sections of `benchmarks/gpu_check.py`: each a `run(settings, report, budget)` that writes markdown."""

FAILED = "**failed**"


def failure(error: BaseException) -> str:
    """A table cell for an item that raised: the section writes it as the item's row and goes on
    (the report counts such rows by their FAILED prefix)."""
    message = str(error).strip().splitlines()
    return f"{FAILED}: {type(error).__name__}" + (f": {message[0][:150]}" if message else "")
