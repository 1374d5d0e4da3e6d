"""The `loraflow` command: dev, worker, api, migrate, token, demo."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path

from loraflow.logging import configure_logging, get_logger
from loraflow.settings import Settings, get_settings

log = get_logger(__name__)
#: Seconds `loraflow api` gives requests in flight on SIGTERM (Kubernetes' default grace is 30).
API_SHUTDOWN_GRACE_S = 10


def _settings(args: argparse.Namespace) -> Settings:
    settings = get_settings()
    if getattr(args, "data_dir", None):
        settings = settings.model_copy(update={"data_dir": Path(args.data_dir)})
    configure_logging(settings.log_level, json=settings.log_json)
    return settings


def cmd_dev(args: argparse.Namespace) -> int:
    from loraflow.devstack.dev import run_dev

    return asyncio.run(run_dev(_settings(args)))


def cmd_demo(args: argparse.Namespace) -> int:
    from loraflow.devstack.demo import run_demo

    return asyncio.run(run_demo(_settings(args)))


def _refuse_dev_secret(settings: Settings) -> bool:
    try:
        settings.refuse_dev_secret()
    except RuntimeError as exc:
        print(f"loraflow: {exc}", file=sys.stderr)
        return True
    return False


def cmd_worker(args: argparse.Namespace) -> int:
    import worker

    if _refuse_dev_secret(_settings(args)):
        return 2
    if args.all:
        roles = worker.ALL_ROLES
    else:
        roles = frozenset({worker.GPU_ROLE if args.gpu else worker.TRAINING_ROLE})
    worker.main(roles)
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    settings = _settings(args)
    if _refuse_dev_secret(settings):
        return 2
    if settings.uses_dev_secret:
        log.warning("dev_jwt_secret", hint="development stack: never expose this API")
    host, port = args.host or settings.api_host, args.port or settings.api_port
    # Where it listens is where its files are served from, unless LORAFLOW_PUBLIC_URL says otherwise.
    settings = settings.model_copy(update={"api_host": host, "api_port": port})
    log_level = settings.log_level.lower()
    # On SIGTERM, requests in flight get this long to finish; then they are cut (a request that
    # waits on a stuck database must not hold the process past its orchestrator's grace period).
    grace = API_SHUTDOWN_GRACE_S
    if settings.api_workers > 1:
        # Each worker process builds its own app (and pool) from the environment.
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            workers=settings.api_workers,
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
            timeout_graceful_shutdown=grace,
        )
    else:
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
            timeout_graceful_shutdown=grace,
        )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from loraflow.db import migrate

    settings = _settings(args)
    try:
        dsn = settings.require_database_url()
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 2
    applied = migrate(dsn, settings.sql_dir, monthly_limit=settings.monthly_limit)
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from loraflow.auth import issue_token

    settings = get_settings()
    try:
        user = str(uuid.UUID(args.user))
    except ValueError:
        print(f"--user must be a UUID, got {args.user!r}", file=sys.stderr)
        return 2
    print(
        issue_token(
            settings.jwt_secret.get_secret_value(),
            user_id=user,
            email=args.email,
            audience=settings.jwt_audience,
            ttl_seconds=args.ttl,
            app_metadata={"role": "admin"} if args.admin else None,
        )
    )
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    """The API's OpenAPI document, without any server: what the frontend's client types are
    generated from (frontend/scripts/api-types.mjs)."""
    import json

    from api.app import create_app

    # The app is built, never started: nothing connects to this database, and nothing loads.
    settings = Settings(database_url="postgresql://openapi@127.0.0.1:1/openapi", screening=False)
    text = json.dumps(create_app(settings).openapi(), indent=2, sort_keys=True) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loraflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run the whole stack locally (Temporal, PostgreSQL, worker, API)")
    dev.add_argument("--data-dir", help="state directory (default ./.loraflow)")
    dev.set_defaults(func=cmd_dev)

    demo = sub.add_parser("demo", help="start the stack, run the main job once, stop")
    demo.add_argument("--data-dir", help="state directory (default ./.loraflow)")
    demo.set_defaults(func=cmd_demo)

    work = sub.add_parser("worker", help="run a Temporal worker against configured servers")
    role = work.add_mutually_exclusive_group()
    role.add_argument(
        "--gpu", action="store_true", help="serve the keyframe path (LORAFLOW_GPU_TASK_QUEUE), not training"
    )
    role.add_argument("--all", action="store_true", help="serve both task queues (the dev stack does)")
    work.set_defaults(func=cmd_worker)

    api = sub.add_parser("api", help="run the HTTP API against configured servers")
    api.add_argument("--host")
    api.add_argument("--port", type=int)
    api.set_defaults(func=cmd_api)

    openapi = sub.add_parser("openapi", help="print the HTTP API's OpenAPI document (no server needed)")
    openapi.add_argument("--output", help="write it to this file instead")
    openapi.set_defaults(func=cmd_openapi)

    sub.add_parser("migrate", help="apply database migrations to DATABASE_URL").set_defaults(func=cmd_migrate)

    token = sub.add_parser("token", help="print a JWT for local use, signed with the configured secret")
    token.add_argument("--user", required=True, help="user id (UUID)")
    token.add_argument("--email")
    token.add_argument("--ttl", type=int, default=24 * 3600, help="seconds until it expires")
    token.add_argument(
        "--admin", action="store_true", help='an admin (app_metadata.role "admin"): the review routes'
    )
    token.set_defaults(func=cmd_token)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
