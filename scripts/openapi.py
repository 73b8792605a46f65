"""``python scripts/openapi.py [PATH]``: write the app's OpenAPI document to openapi/openapi.json.

A development tool of the checkout (the shipped service serves its document at /openapi.json);
the tests compare the committed document with :func:`render`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from weightspace_app.infra.settings import Settings

from weightspace_service.app import create_app

DOCUMENT = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def document() -> dict[str, Any]:
    return create_app(Settings()).openapi()


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DOCUMENT
    target.write_text(render())
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
