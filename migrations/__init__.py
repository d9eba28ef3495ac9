"""Alembic migrations: the one owner of the database schema, roles and grants."""
