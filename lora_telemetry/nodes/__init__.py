"""nodes layer (see docs/architecture in DESIGN)."""
