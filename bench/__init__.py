"""Benchmarks: ``python -m bench`` prints a Markdown table; bench/RESULTS.md keeps the latest."""
