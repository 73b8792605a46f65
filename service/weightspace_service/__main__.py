"""``python -m weightspace_service``: migrate the database to head, then serve the API with uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from weightspace.adapters.migrate import upgrade
from weightspace.adapters.settings import Settings
from weightspace_service.app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m weightspace_service", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--no-migrate", action="store_true", help="do not upgrade the database first"
    )
    args = parser.parse_args(argv)
    settings = Settings()
    settings.configure_logging()
    settings.prepare_home()
    if not args.no_migrate:
        upgrade(settings.database_url)
    # log_config=None: uvicorn keeps the one configuration set above.
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None)


if __name__ == "__main__":
    main()
