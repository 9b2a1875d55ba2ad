"""Baseline (issue 11): see the module docstrings."""
