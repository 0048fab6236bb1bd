"""The registry of tenants, sites, gateways, devices and sensors (SQLAlchemy)."""
