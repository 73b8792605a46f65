"""The HTTP API: a thin FastAPI adapter over weightspace_app.usecases.experiments."""
