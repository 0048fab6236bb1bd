"""Carbon ingestion: Graphite's plaintext and pickle protocols into the store."""
