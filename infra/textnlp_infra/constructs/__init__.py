"""Constructs that realise one section (or one component of a section) of the design."""
