"""``python -m weightspace_worker``: a Celery worker on the given queues (solo pool for GPU queues)."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m weightspace_worker", description=__doc__)
    parser.add_argument("--queues", default="cpu,gpu")
    parser.add_argument("--pool", default="solo", choices=["solo", "threads", "prefork"])
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--loglevel", default="info")
    parser.add_argument("--hostname", default=None)
    args = parser.parse_args(argv)
    if "gpu" in args.queues.split(",") and args.pool == "prefork":
        parser.error(
            "GPU queues need --pool solo or threads: CUDA cannot be used in forked children"
        )
    from weightspace import determinism

    determinism.prepare_process()  # before anything in this process can create a cuBLAS handle
    from weightspace_worker.celery_app import app

    command = [
        "worker",
        f"--queues={args.queues}",
        f"--pool={args.pool}",
        f"--concurrency={args.concurrency}",
        f"--loglevel={args.loglevel}",
        "--without-gossip",
        "--without-mingle",
    ]
    if args.hostname:
        command.append(f"--hostname={args.hostname}")
    app.worker_main(command)


if __name__ == "__main__":
    main()
