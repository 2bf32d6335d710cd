"""End-to-end training: the loop, its datasets, its child process."""
