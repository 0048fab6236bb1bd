"""Revisions of the registry schema, oldest first."""
