"""``python -m weightspace_service``: migrate the database to head, then serve the API with uvicorn."""

from __future__ import annotations

import argparse
import ipaddress

import uvicorn
from weightspace_app.infra.migrate import upgrade
from weightspace_app.infra.settings import Settings

from weightspace_service.app import create_app

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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
    if settings.auth == "none" and not settings.allowed_hosts:
        if not is_loopback(args.host):
            parser.exit(
                2,
                f"refusing to serve {args.host} with WEIGHTSPACE_AUTH=none: anyone who reaches "
                "it could read and delete every experiment. Set WEIGHTSPACE_AUTH=tokens (and "
                "create tokens with `weightspace token create`), or WEIGHTSPACE_ALLOWED_HOSTS "
                "to serve it unauthenticated anyway.\n",
            )
        # Against DNS rebinding: a page elsewhere must not reach us through its own name.
        settings = settings.model_copy(update={"allowed_hosts": list(LOOPBACK_NAMES)})
    settings.prepare_home()
    if not args.no_migrate:
        upgrade(settings.database_url)
    # log_config=None: uvicorn keeps the one configuration set above.
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None)


if __name__ == "__main__":
    main()
