"""sim layer (see docs/architecture in DESIGN)."""
