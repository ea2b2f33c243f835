"""Stacks: each groups the constructs that are deployed, and replaced, together."""
