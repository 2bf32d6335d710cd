"""Measuring one cell: the correctness gate, CPU and GPU timing, memory, instruction counts,
the budget."""
