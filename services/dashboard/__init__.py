"""The admin dashboard: server-rendered pages for operators, read-only, behind a login."""
