"""The ``weightspace`` command line: experiments, the paper's reproduction and the server processes.

One module per concern, each adding its commands to the one Typer :data:`app`:

- :mod:`~weightspace_client.cli.app`: the application and the options commands share (their
  choices are the API's enums, the Literals of the generated :mod:`weightspace_client.types`);
- :mod:`~weightspace_client.cli.output`: consoles, JSON, styled cells, errors as messages;
- :mod:`~weightspace_client.cli.progress`: live progress of an experiment and of a suite;
- :mod:`~weightspace_client.cli.experiments`: submit, list, status, wait, tag, download;
- :mod:`~weightspace_client.cli.imports`: import (a folder of your own checkpoints);
- :mod:`~weightspace_client.cli.lifecycle`: cancel, retry, delete; token (server-side);
- :mod:`~weightspace_client.cli.analysis`: pca, distances, trajectory, analyse (across experiments);
- :mod:`~weightspace_client.cli.landscape`: landscape;
- :mod:`~weightspace_client.cli.verification`: verify;
- :mod:`~weightspace_client.cli.presets`: presets;
- :mod:`~weightspace_client.cli.suites`: reproduce, suites list;
- :mod:`~weightspace_client.cli.workers`: workers;
- :mod:`~weightspace_client.cli.server`: up, api, worker (they run the server's supervisor,
  ``python -m weightspace_app.infra.supervisor``, in their place).

Client commands talk HTTP through :class:`~weightspace_client.WeightspaceClient`; server
commands (up, api, worker, token, reproduce --embedded) start the server's entry points as
processes: the client imports no server code. The command modules import :mod:`.app` and each
other, never this package, which imports them (no import circle).
"""

from __future__ import annotations

# Imported for their commands, in the order ``weightspace --help`` lists them.
# isort: off
from weightspace_client.cli import experiments as experiments
from weightspace_client.cli import imports as imports
from weightspace_client.cli import lifecycle as lifecycle
from weightspace_client.cli import analysis as analysis
from weightspace_client.cli import landscape as landscape
from weightspace_client.cli import verification as verification
from weightspace_client.cli import presets as presets
from weightspace_client.cli import suites as suites
from weightspace_client.cli import workers as workers
from weightspace_client.cli import server as server

# isort: on
from weightspace_client.cli.app import app

__all__ = ["app"]
