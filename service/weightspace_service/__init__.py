"""The HTTP API: a thin FastAPI adapter over weightspace.adapters.experiments."""
