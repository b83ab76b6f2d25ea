"""Figures from result tables. The only package that draws with matplotlib (the CLI only picks a backend).

Plot functions take tables (and an optional `ax`) and return the figure; they never run an
optimizer, compute a result, write a data file or choose a backend. `style.py` holds the look
shared by every figure (one colour per optimizer everywhere) and writes figure files.
"""
