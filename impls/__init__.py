"""One file per implementation; harness/registry.py finds them by scanning this folder."""
