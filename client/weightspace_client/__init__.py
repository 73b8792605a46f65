"""Client and command line of the weightspace service; installs without torch, numpy or pydantic."""

from weightspace_client._version import __version__
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
