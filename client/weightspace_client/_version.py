"""The client's version (one place: the package, the User-Agent and ``--version`` read it)."""

__version__ = "0.1.0"
