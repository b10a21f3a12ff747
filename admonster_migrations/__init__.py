"""Alembic revisions of Ad Monster's store (env.py, versions/). The store runs them itself when it opens."""
