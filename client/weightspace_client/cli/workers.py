"""The ``workers`` command: the live workers, their queues, devices and data sets."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from weightspace_client.cli.app import JsonOption, UrlOption, app
from weightspace_client.cli.output import client as _client
from weightspace_client.cli.output import out, print_json
from weightspace_client.client import DEFAULT_URL


@app.command("workers")
def list_workers(url: UrlOption = DEFAULT_URL, as_json: JsonOption = False) -> None:
    """List the live workers (an admin token under WEIGHTSPACE_AUTH=tokens)."""
    with _client(url) as client:
        found = client.workers()
    if as_json:
        print_json(found)
        return
    table = Table(title=f"live workers (heartbeat within {found['ttl_seconds']:g} s)")
    for name in ("worker", "queues", "device", "torch", "data sets (train/test)", "last seen"):
        table.add_column(name)
    for worker in found["items"]:
        datasets = ", ".join(
            f"{name} {train:,}/{test:,}"
            for name, (train, test) in sorted(worker["datasets"].items())
        )
        table.add_row(
            escape(worker["id"]),
            escape(",".join(worker["queues"])),
            escape(f"{worker['device']} ({worker['device_name']})"),
            escape(worker["torch_version"]),
            escape(datasets),
            escape(worker["seen_at"]),
        )
    out().print(table)
    if not found["items"]:
        out().print("No live worker: experiments stay queued until one starts.")
