"""Benchmark protocols reproduced to the official scorers (one module per benchmark)."""
