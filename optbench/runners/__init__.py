"""Runners: turn a spec into a tidy result table. They never print and never plot."""
