"""Validating the winners of a search on larger models: a Ray Tune grid of trials, its store, and the report."""
