"""cli layer (see docs/architecture in DESIGN)."""
