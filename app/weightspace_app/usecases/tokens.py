"""API tokens: random bearer secrets, stored as sha256, each acting for one owner (or all: admin).

    python -m weightspace_app.usecases.tokens create --owner NAME [--admin] [--label TEXT]
    python -m weightspace_app.usecases.tokens list
    python -m weightspace_app.usecases.tokens revoke TOKEN_ID

The command line works on ``WEIGHTSPACE_DATABASE_URL`` (default: the embedded SQLite file), as
the server does; ``weightspace token ...`` runs it. A token is printed once, when created: only
its hash is kept. sha256 suffices for secrets of 256 random bits (no salt or slow hash needed:
there is nothing to guess).
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import sys
import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from weightspace_app.access import NotFound, Principal
from weightspace_app.infra.db import ApiToken, utcnow

PREFIX = "ws_"


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(
    session: Session, owner: str, *, admin: bool = False, label: str | None = None
) -> tuple[ApiToken, str]:
    """A new token for ``owner``; returns the row and the secret (shown once, never stored)."""
    owner = owner.strip()
    if not owner or len(owner) > 200:
        raise ValueError("the owner must be 1 to 200 characters")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        id=uuid.uuid4(),
        owner=owner,
        admin=admin,
        token_hash=hash_token(secret),
        label=label,
        created_at=utcnow(),
    )
    session.add(token)
    session.commit()
    return token, secret


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.owner, ApiToken.created_at)))


def revoke_token(session: Session, token_id: uuid.UUID) -> ApiToken:
    """Revoke the token (at once, in every API process: each request looks it up)."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"token {token_id} not found")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.commit()
    return token


def authenticate(session: Session, secret: str) -> Principal | None:
    """The principal a presented secret acts for; None if it is unknown or revoked."""
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    if token is None or token.revoked_at is not None:
        return None
    return Principal(token.owner, admin=token.admin, token=str(token.id))


def main(argv: Sequence[str] | None = None) -> int:
    from weightspace_app.infra.db import make_engine, make_sessionmaker
    from weightspace_app.infra.settings import Settings

    parser = argparse.ArgumentParser(prog="weightspace token", description="Manage API tokens.")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a token and print it (once)")
    create.add_argument("--owner", required=True, help="whose experiments the token acts on")
    create.add_argument("--admin", action="store_true", help="may read and manage every owner's")
    create.add_argument("--label", help="a note, e.g. where the token is used")
    commands.add_parser("list", help="list tokens (never their secrets)")
    revoke = commands.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id", type=uuid.UUID)
    args = parser.parse_args(argv)

    settings = Settings()
    settings.prepare_home()
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            if args.command == "create":
                token, secret = create_token(
                    session, args.owner, admin=args.admin, label=args.label
                )
                print(secret)
                role = "admin" if token.admin else "owner"
                print(f"token {token.id} for {token.owner} ({role}); shown once", file=sys.stderr)
            elif args.command == "list":
                for token in list_tokens(session):
                    state = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
                    role = "admin" if token.admin else "owner"
                    print(
                        f"{token.id}  {token.owner}  {role}  {state}  "
                        f"created {token.created_at:%Y-%m-%d %H:%M}  {token.label or ''}".rstrip()
                    )
            else:
                try:
                    token = revoke_token(session, args.token_id)
                except NotFound as error:
                    print(f"error: {error}", file=sys.stderr)
                    return 1
                print(f"revoked {token.id} ({token.owner})")
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
