"""SQLAlchemy 2 models and repositories; SQLite in the local profile, PostgreSQL in aws."""
