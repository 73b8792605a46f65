"""``python -m weightspace_client``: the ``weightspace`` command line."""

from weightspace_client.cli import app

app(prog_name="weightspace")
