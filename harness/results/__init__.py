"""Stored results: the run store, the machine's description and ceilings."""
