"""What the commands print: consoles, JSON, styled cells, numbers, and errors as messages."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from weightspace_client.client import URL_ENV, ApiError, WeightspaceClient, WeightspaceError

_STATUS_STYLE = {
    "queued": "yellow",
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "magenta",
}
VERDICT_STYLE = {"supported": "green", "not supported": "red", "not measured": "yellow"}


def out() -> Console:
    """Standard output (Rich markup, no automatic highlighting)."""
    return Console(highlight=False)


def err() -> Console:
    """Standard error (Rich markup, no automatic highlighting)."""
    return Console(stderr=True, highlight=False)


def error(message: str) -> None:
    """Print ``error: message`` (plain text, escaped) to standard error."""
    err().print(f"[red]error:[/] {escape(message)}", soft_wrap=True)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False))


def styled(status: str | None) -> str:
    """A status in its colour, as Rich markup."""
    status = status or "-"
    style = _STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else escape(status)


def num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    try:
        return f"{float(value):.{digits}g}"
    except (TypeError, ValueError):
        return escape(str(value))


def percent(value: Any) -> str:
    if value is None:
        return "-"
    try:
        return f"{100 * float(value):.2f}%"
    except (TypeError, ValueError):
        return escape(str(value))


def figures_table(*headers: str, title: str | None = None) -> Table:
    """A table of figures that fits 80 columns: light rules, one space between columns, and a
    figure too wide for its column wrapped onto a second line, never cut to an ellipsis."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 0, 0, 1))
    for header in headers:
        table.add_column(header, justify="right", overflow="fold")
    return table


def note_incomplete(result: Mapping[str, Any]) -> None:
    if result.get("complete") is False:
        err().print(
            "[yellow]note:[/] the experiment has not finished; this covers the snapshots so far"
        )


@contextlib.contextmanager
def client(url: str) -> Iterator[WeightspaceClient]:
    """A client for ``url``; API and connection errors become a message and exit status 1."""
    try:
        with WeightspaceClient(url) as opened:
            yield opened
    except ApiError as failure:
        err().print(f"[red]error:[/] {escape(str(failure))}")
        raise typer.Exit(1) from None
    except httpx.TransportError as failure:
        err().print(
            f"[red]error:[/] cannot reach the weightspace API at {escape(url)}: "
            f"{escape(str(failure) or type(failure).__name__)}\n"
            f"Is it running? Start one with `weightspace up`, or pass --url / set {URL_ENV}."
        )
        raise typer.Exit(1) from None
    except (WeightspaceError, TimeoutError) as failure:
        err().print(f"[red]error:[/] {escape(str(failure))}")
        raise typer.Exit(1) from None
