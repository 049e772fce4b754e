"""radios layer (see docs/architecture in DESIGN)."""
