"""Benchmarks run by `panoptic bench ...`: figures measured against a baseline in the same run."""
