"""`python -m optbench ...` (and `torchrun -m optbench train ...`) run the CLI."""

from .cli import entry

entry()
