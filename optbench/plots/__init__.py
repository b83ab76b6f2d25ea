"""Figures from result tables. The only package that imports matplotlib.

Plot functions take data (and an optional `ax`) and return the figure; they never run an
optimizer. `style.py` holds the look shared by every figure: one colour per optimizer everywhere.
"""
