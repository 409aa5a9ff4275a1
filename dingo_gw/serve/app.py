"""The HTTP API (FastAPI) of ``dingo_serve``; see docs/serve.md.

    POST /alerts                  alert JSON -> 202 {job_id, ...} (200 if a duplicate), 4xx + detail
    GET  /alerts/{id}             status, timings, result links of a job id or an alert's latest job
    GET  /alerts/{id}/files/{f}   a result file of a job
    GET  /jobs?status=queued      recent jobs
    GET  /health                  networks, queue counts, the job being analysed
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse

from dingo_gw.io.atomic import atomic_write
from dingo_gw.serve.alert import AlertError, redact_paths
from dingo_gw.serve.store import STATES
from dingo_gw.serve.worker import Service, public_job

logger = logging.getLogger(__name__)


def create_app(service: Service, endpoint: dict | None = None, consumers: list | None = None):
    """The FastAPI app serving ``service``; its lifespan starts/stops the analysis thread and the
    consumers (objects with start()/stop()) and writes ``<state_dir>/endpoint.json``."""
    consumers = consumers or []

    @contextlib.asynccontextmanager
    async def lifespan(app):
        service.start()
        for c in consumers:
            c.start()
        if endpoint is not None:
            with atomic_write(service.state_dir / "endpoint.json") as tmp:
                tmp.write_text(json.dumps({**endpoint, "pid": os.getpid()}))
        try:
            yield
        finally:
            for c in consumers:
                c.stop()
            service.stop()

    app = FastAPI(title="dingo_serve", lifespan=lifespan)
    limit = service.config.max_body_bytes

    @app.post("/alerts", status_code=202)
    async def post_alert(request: Request):
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HTTPException(413, f"alert body of {declared} bytes exceeds the limit of {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                raise HTTPException(413, f"alert body exceeds the limit of {limit} bytes")
        try:
            job, created = await run_in_threadpool(service.submit, bytes(body))
        except AlertError as e:
            raise HTTPException(e.status, redact_paths(str(e))) from None
        out = public_job(job)
        out["duplicate"] = not created
        return JSONResponse(out, status_code=202 if created else 200)

    @app.get("/alerts/{ident}")
    def get_alert(ident: str):
        out = service.status(ident)
        if out is None:
            raise HTTPException(404, f"no job or alert {ident!r}")
        return out

    @app.get("/alerts/{ident}/files/{name}")
    def get_file(ident: str, name: str):
        job = service.store.get(ident)
        if job is None or name not in (job.get("files") or {}).values():
            raise HTTPException(404, f"job {ident!r} has no file {name!r}")
        path = Path(job["result_dir"]) / name
        if not path.is_file():
            raise HTTPException(404, f"result file {name!r} of {ident!r} is missing on disk")
        return FileResponse(path)

    @app.get("/jobs")
    def list_jobs(status: str | None = None, limit: int = 100):
        if status is not None and status not in STATES:
            raise HTTPException(422, f"unknown status {status!r}; one of {', '.join(STATES)}")
        return [public_job(j) for j in service.store.jobs(status, max(1, min(limit, 1000)))]

    @app.get("/health")
    def health():
        return {"status": "ok", "networks": [n.describe() for n in service.networks],
                "jobs": service.store.counts(), "running": service.current}

    return app
