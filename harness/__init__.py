"""nnladder: a benchmark and profiling harness for a ladder of neural-network implementations."""

__version__ = "0.1.0"
