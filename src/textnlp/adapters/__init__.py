"""Adapters to the outside world, each behind a small interface with a local and a cloud
implementation: db/ (SQLAlchemy), cache/, storage/, queue/, secrets/."""
