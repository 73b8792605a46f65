"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from threadpoolctl import threadpool_limits
from weightspace_app.infra.db import make_engine, make_sessionmaker
from weightspace_app.infra.maintenance import Maintenance, celery_publisher
from weightspace_app.infra.queue import make_celery
from weightspace_app.infra.settings import Settings
from weightspace_app.infra.storage import store_for
from weightspace_app.usecases.analyses import Analyzer
from weightspace_app.usecases.figures import FigureMaker

from weightspace.snapshots import ObjectStore
from weightspace_service import contract, problems
from weightspace_service.protocol import (
    BodyLimitMiddleware,
    HostCheckMiddleware,
    MethodsMiddleware,
    route_table,
)
from weightspace_service.requests import RequestContext
from weightspace_service.routes import (
    analysis,
    analysis_exports,
    experiments,
    figures,
    health,
    joint,
    landscape,
    lifecycle,
    suites,
    ui,
    uploads,
    verification,
    workers,
)

# Every router the app serves: included in this order, and the table behind `Allow` headers.
ROUTERS = (
    experiments.router,
    lifecycle.router,
    uploads.router,
    analysis.router,
    figures.router,
    landscape.router,
    verification.router,
    joint.router,
    analysis_exports.router,
    suites.router,
    workers.router,
    health.router,
    ui.router,
)

API_VERSION = "0.1.0"
log = logging.getLogger(__name__)


def _operation_id(route: APIRoute) -> str:
    # Stable ids: the handler's name (create_experiment, get_pca, ...).
    return route.name


def _open_store(settings: Settings) -> ObjectStore:
    """The snapshot store, its bucket created if missing; an unreachable S3 is reported by /ready."""
    try:
        return store_for(settings, create_bucket=True)
    except Exception as error:  # e.g. S3 down or credentials refused: /ready says which
        log.warning("snapshot store not ready at startup: %s", error)
        return store_for(settings)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.prepare_home()
        app.state.settings = settings
        app.state.engine = make_engine(settings.database_url)
        app.state.sessions = make_sessionmaker(app.state.engine)
        app.state.store = _open_store(settings)
        app.state.celery = make_celery(settings)
        # One BLAS thread per analysis: the pool gives the parallelism, and many threads each
        # starting BLAS's own pool of threads would oversubscribe the cores.
        blas = threadpool_limits(limits=settings.analysis_blas_threads, user_api="blas")
        app.state.analyzer = Analyzer(
            app.state.store,
            app.state.sessions,
            workers=settings.analysis_workers,
            memory_bytes=settings.analysis_memory_bytes,
        )
        app.state.figures = FigureMaker(app.state.analyzer)
        # Outbox relay and lease reaper (see weightspace_app.infra.maintenance).
        app.state.maintenance = Maintenance(
            settings, app.state.sessions, celery_publisher(app.state.celery)
        )
        app.state.maintenance.start()
        app.state.readiness = health.probe_for(app.state)
        try:
            yield
        finally:
            app.state.readiness.shutdown()
            app.state.maintenance.stop()
            app.state.analyzer.shutdown()
            blas.restore_original_limits()
            app.state.engine.dispose()

    # /docs and /redoc with Swagger UI's and ReDoc's files served from the package (no CDN).
    app = FastAPIOffline(
        title=contract.TITLE,
        version=API_VERSION,
        summary="Experiments in the weight space of neural networks.",
        description=(
            "Submit experiment specs; workers train the replicas and store a full parameter snapshot at "
            "scheduled epochs; analysis endpoints answer PCA coordinates, explained variance, distance "
            "matrices and trajectory metrics. Errors are RFC 9457 problem documents."
        ),
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        responses=problems.problem_responses(413, 500),
    )
    for router in ROUTERS:
        app.include_router(router)
    derive = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = contract.describe_shared_fields(derive())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.routes = route_table(app.router.routes, ROUTERS)
    problems.install(app)
    app.add_middleware(RequestContext)
    app.add_middleware(MethodsMiddleware, table=lambda: app.state.routes)
    # Counted while the body streams in: a larger one is refused (413) without being read whole.
    app.add_middleware(
        BodyLimitMiddleware,
        limit=settings.max_body_bytes,
        refuse=problems.send_problem,
        larger=[
            ("PUT", uploads.UPLOAD_PATH, settings.max_upload_bytes, "WEIGHTSPACE_MAX_UPLOAD_BYTES")
        ],
    )
    if settings.allowed_hosts:
        app.add_middleware(
            HostCheckMiddleware, allowed=settings.allowed_hosts, refuse=problems.send_problem
        )
    return app
