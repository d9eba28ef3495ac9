"""Helpers the tests share: free ports, and services started as real processes."""
