"""The HTTP API: Graphite render API, REST API, event stream and dashboard files."""
