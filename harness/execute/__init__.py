"""The grid and its cells: the one cell lifecycle, the child-process protocol, MPI ranks."""
