"""Graphite-compatible render engine: time parsing, targets, functions, find."""
