"""The HTTP surface (ASGI, Starlette): parse, call the predictor or platform, map errors."""

from __future__ import annotations

import json
import re
import uuid
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from decisionloop.errors import DecisionLoopError, Invalid, TooLarge
from decisionloop.refs import ModelRef
from decisionloop.serving.predictor import Predictor

if TYPE_CHECKING:
    from decisionloop.platform import Platform

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
#: batches at least this large are scored off the event loop
THREADPOOL_ROWS = 64


def problem(error: DecisionLoopError, request_id: str | None = None) -> JSONResponse:
    body = error.to_problem()
    if request_id:
        body["request_id"] = request_id
    return JSONResponse(body, status_code=error.http_status, media_type="application/problem+json")


async def read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"body of {declared} bytes exceeds {limit}", hint="send smaller batches")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise TooLarge(f"body exceeds {limit} bytes", hint="send smaller batches")
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Invalid(f"the body is not valid JSON: {exc}", hint="send application/json") from exc


def create_app(platform: Platform) -> Starlette:
    """The ASGI app for one project."""
    serving = platform.settings.serving
    predictor = Predictor(platform, max_rows=serving.max_rows_per_request)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            models = await run_in_threadpool(platform.list_models)
        except DecisionLoopError as error:
            return problem(error)
        return JSONResponse({"status": "ready", "models": len(models)})

    async def list_models(request: Request) -> Response:
        models = await run_in_threadpool(platform.list_models)
        return JSONResponse(
            {
                "models": [
                    {"name": m.name, "latest_version": m.latest_version, "aliases": m.aliases}
                    for m in models
                ]
            }
        )

    async def predict(request: Request) -> Response:
        header_id = request.headers.get("x-request-id", "")
        request_id = header_id if _REQUEST_ID.match(header_id) else uuid.uuid4().hex
        try:
            ref = ModelRef.parse(request.path_params["name"])
            query = request.query_params
            if "version" in query:
                if not query["version"].isdigit():
                    raise Invalid("`version` must be a number", hint="?version=3")
                ref = ModelRef(ref.name, version=int(query["version"]))
            elif "alias" in query:
                ref = ModelRef.parse(f"{ref.name}@{query['alias']}")
            payload = await read_json(request, serving.max_body_bytes)
            rows = len(payload.get("instances", ())) if isinstance(payload, dict) else 0
            if rows >= THREADPOOL_ROWS:
                result = await run_in_threadpool(predictor.predict, ref, payload, request_id)
            else:
                result = predictor.predict(ref, payload, request_id)
        except DecisionLoopError as error:
            return problem(error, request_id)
        return JSONResponse(result.to_dict(), headers={"x-request-id": request_id})

    async def online_features(request: Request) -> Response:
        header_id = request.headers.get("x-request-id", "")
        request_id = header_id if _REQUEST_ID.match(header_id) else uuid.uuid4().hex
        try:
            payload = await read_json(request, serving.max_body_bytes)
            found = predictor.online_features(request.path_params["name"], payload)
        except DecisionLoopError as error:
            return problem(error, request_id)
        return JSONResponse(found.to_dict(), headers={"x-request-id": request_id})

    async def on_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, DecisionLoopError):
            return problem(exc)
        if isinstance(exc, HTTPException):
            return JSONResponse(
                {"title": exc.detail, "status": exc.status_code, "detail": exc.detail},
                status_code=exc.status_code,
                media_type="application/problem+json",
            )
        return JSONResponse(
            {"title": "Internal Server Error", "status": 500, "detail": "unexpected error"},
            status_code=500,
            media_type="application/problem+json",
        )

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{name}/predict", predict, methods=["POST"]),
        Route("/v1/feature-services/{name}/online", online_features, methods=["POST"]),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={
            Exception: on_error,
            HTTPException: on_error,
            DecisionLoopError: on_error,
        },
    )


def app_from_environment() -> Starlette:
    """Factory for ``uvicorn --factory`` and worker processes (uses DECISIONLOOP_PROJECT_DIR)."""
    from decisionloop.platform import Platform

    return create_app(Platform.open())
