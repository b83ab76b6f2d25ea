"""The Python API: each function takes parsed specs and returns a result object with tidy tables."""
