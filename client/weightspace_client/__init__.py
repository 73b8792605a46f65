"""Client and command line of the weightspace service; installs without torch, numpy or pydantic."""

__version__ = "0.1.0"

# After __version__, which client.py reads.
from weightspace_client.aio import AsyncWeightspaceClient
from weightspace_client.client import (
    ApiError,
    ChecksumError,
    ExperimentFailed,
    ReportFailed,
    WeightspaceClient,
    WeightspaceError,
)

__all__ = [
    "ApiError",
    "AsyncWeightspaceClient",
    "ChecksumError",
    "ExperimentFailed",
    "ReportFailed",
    "WeightspaceClient",
    "WeightspaceError",
    "__version__",
]
