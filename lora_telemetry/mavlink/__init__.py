"""mavlink layer (see docs/architecture in DESIGN)."""
