"""The HTTP API: Graphite render API, REST API, live event stream and dashboard files."""
