"""``unihpr-serve``: run the API with uvicorn.

    unihpr-serve [--host 127.0.0.1] [--port 8000] [--bundle PATH] [--log-level info]

Other settings come from ``UNIHPR_*`` environment variables (see ``service.config``); ``--bundle`` overrides
``UNIHPR_BUNDLE_PATH``. One process serves one bundle; scale out with more processes behind a load balancer.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import uvicorn


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="unihpr-serve", description="Serve a UniHPR bundle over HTTP.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--bundle", type=Path, default=None, help="bundle directory (default: $UNIHPR_BUNDLE_PATH or "
                                                                   "bundles/default)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from pydantic import ValidationError

    from service.config import Settings
    from service.main import create_app

    try:
        settings = Settings(**({"bundle_path": args.bundle} if args.bundle is not None else {}))
    except ValidationError as err:
        print(f"unihpr-serve: invalid settings: {err}", file=sys.stderr)
        return 2
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level,
                timeout_graceful_shutdown=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
