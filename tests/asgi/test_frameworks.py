"""Real frameworks on a real pounce, driven by httpx: Starlette and FastAPI (test extras),
and Litestar, Quart and Django when they are installed (skipped otherwise)."""

import asyncio
import contextlib
import sys
import types
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from support.apps import Recorder

pytestmark = pytest.mark.timeout(60)


# ---------------------------------------------------------------------- Starlette


def _starlette_app(background: Recorder) -> Any:
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
    from starlette.routing import Route

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        background.add("startup")
        yield {"greeting": "hello from lifespan"}
        background.add("shutdown")

    async def home(request: Request) -> Any:
        return PlainTextResponse(request.state.greeting)

    async def item(request: Request) -> Any:
        return JSONResponse(
            {"id": int(request.path_params["item_id"]), "q": request.query_params.get("q")}
        )

    async def echo(request: Request) -> Any:
        body = await request.body()
        return JSONResponse({"length": len(body), "text": body.decode()})

    async def stream(request: Request) -> Any:
        async def numbers() -> AsyncIterator[bytes]:
            for i in range(5):
                yield f"{i}\n".encode()
                await asyncio.sleep(0)

        return StreamingResponse(numbers(), media_type="text/plain")

    async def with_task(request: Request) -> Any:
        task = BackgroundTask(background.add, "background ran")
        return PlainTextResponse("queued", background=task)

    async def fail(request: Request) -> Any:
        raise RuntimeError("starlette handler failed")

    return Starlette(
        routes=[
            Route("/", home),
            Route("/items/{item_id:int}", item),
            Route("/echo", echo, methods=["POST"]),
            Route("/stream", stream),
            Route("/task", with_task),
            Route("/fail", fail),
        ],
        lifespan=lifespan,
    )


def test_starlette(start: Any, pounce_logs: Any) -> None:
    events = Recorder()
    handle = start(_starlette_app(events))
    assert events.snapshot() == ["startup"]
    with httpx.Client(base_url=handle.url, timeout=15) as client:
        response = client.get("/")
        assert response.status_code == 200
        assert response.text == "hello from lifespan"
        assert client.get("/items/42", params={"q": "x y"}).json() == {"id": 42, "q": "x y"}
        assert client.get("/items/nope").status_code == 404
        payload = "é" * 10_000
        assert client.post("/echo", content=payload.encode()).json() == {
            "length": len(payload.encode()),
            "text": payload,
        }
        streamed = client.get("/stream")
        assert streamed.text == "0\n1\n2\n3\n4\n"
        assert streamed.headers["transfer-encoding"] == "chunked"
        assert client.get("/task").text == "queued"
        assert events.wait_for(lambda items: "background ran" in items)
        head = client.head("/")
        assert head.status_code in (200, 405)
        pounce_logs.expect_errors()
        assert client.get("/fail").status_code == 500
    handle.stop()
    assert events.snapshot()[-1] == "shutdown"


# ---------------------------------------------------------------------- FastAPI


def _fastapi_app(events: Recorder) -> Any:
    from fastapi import BackgroundTasks, FastAPI, Request
    from fastapi.responses import StreamingResponse
    from pydantic import BaseModel

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        events.add("startup")
        yield {"db": {"apples": 3}}
        events.add("shutdown")

    app = FastAPI(lifespan=lifespan)

    class Item(BaseModel):
        name: str
        price: float

    @app.get("/stock/{name}")
    async def stock(name: str, request: Request) -> dict[str, Any]:
        return {"name": name, "count": request.state.db.get(name, 0)}

    @app.post("/items")
    async def create(item: Item, tasks: BackgroundTasks) -> dict[str, Any]:
        tasks.add_task(events.add, f"created {item.name}")
        return {"name": item.name, "price": item.price, "taxed": round(item.price * 1.2, 2)}

    @app.get("/sync")
    def sync_endpoint() -> dict[str, str]:  # runs in FastAPI's thread pool
        return {"sync": "ok"}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def gen() -> AsyncIterator[str]:
            for i in range(3):
                yield f"data: {i}\n\n"

        return StreamingResponse(gen(), media_type="text/event-stream")

    return app


def test_fastapi(start: Any) -> None:
    events = Recorder()
    handle = start(_fastapi_app(events))
    with httpx.Client(base_url=handle.url, timeout=15) as client:
        assert client.get("/stock/apples").json() == {"name": "apples", "count": 3}
        created = client.post("/items", json={"name": "pear", "price": 2.5})
        assert created.status_code == 200
        assert created.json() == {"name": "pear", "price": 2.5, "taxed": 3.0}
        assert events.wait_for(lambda items: "created pear" in items)
        invalid = client.post("/items", json={"name": "pear"})
        assert invalid.status_code == 422
        assert client.get("/sync").json() == {"sync": "ok"}
        stream = client.get("/stream")
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.text == "data: 0\n\ndata: 1\n\ndata: 2\n\n"
        docs = client.get("/openapi.json")
        assert docs.status_code == 200
        assert "/items" in docs.json()["paths"]
    handle.stop()
    assert events.snapshot()[0] == "startup"
    assert events.snapshot()[-1] == "shutdown"


# ---------------------------------------------------------------------- Litestar


def test_litestar(start: Any) -> None:
    litestar = pytest.importorskip("litestar")
    from litestar import get, post

    events = Recorder()

    @get("/")
    async def index() -> dict[str, str]:
        return {"framework": "litestar"}

    @post("/echo")
    async def echo(request: litestar.Request) -> dict[str, Any]:
        return {"got": await request.json()}

    app = litestar.Litestar(
        route_handlers=[index, echo],
        on_startup=[lambda: events.add("startup")],
        on_shutdown=[lambda: events.add("shutdown")],
    )
    handle = start(app)
    with httpx.Client(base_url=handle.url, timeout=15) as client:
        assert client.get("/").json() == {"framework": "litestar"}
        assert client.post("/echo", json={"a": [1, 2]}).json() == {"got": {"a": [1, 2]}}
        assert client.get("/missing").status_code == 404
    handle.stop()
    assert events.snapshot() == ["startup", "shutdown"]


# ---------------------------------------------------------------------- Quart


def test_quart(start: Any) -> None:
    quart = pytest.importorskip("quart")
    app = quart.Quart("pounce_test")
    events = Recorder()

    @app.before_serving
    async def startup() -> None:
        events.add("startup")

    @app.route("/")
    async def index() -> Any:
        return {"framework": "quart"}

    @app.route("/echo", methods=["POST"])
    async def echo() -> Any:
        data = await quart.request.get_data()
        return data[::-1]

    handle = start(app)
    with httpx.Client(base_url=handle.url, timeout=15) as client:
        assert client.get("/").json() == {"framework": "quart"}
        assert client.post("/echo", content=b"abc").content == b"cba"
    assert events.snapshot() == ["startup"]


# ---------------------------------------------------------------------- Django


def _django_app() -> Any:
    pytest.importorskip("django")
    import django
    from django.conf import settings

    module = types.ModuleType("pounce_test_django_urls")
    sys.modules[module.__name__] = module
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="pounce-tests-only",
            ROOT_URLCONF=module.__name__,
            ALLOWED_HOSTS=["127.0.0.1", "localhost"],
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
        )
        django.setup()
    from django.core.handlers.asgi import ASGIHandler
    from django.http import HttpResponse, JsonResponse
    from django.urls import path

    def index(request: Any) -> Any:
        return JsonResponse({"framework": "django", "method": request.method})

    def echo(request: Any) -> Any:
        return HttpResponse(request.body.upper(), content_type="text/plain")

    async def async_view(request: Any) -> Any:
        await asyncio.sleep(0)
        return JsonResponse({"async": True, "q": request.GET.get("q")})

    module.urlpatterns = [  # type: ignore[attr-defined]
        path("", index),
        path("echo", echo),
        path("async", async_view),
    ]
    return ASGIHandler()


def test_django(start: Any) -> None:
    app = _django_app()
    handle = start(app)
    with httpx.Client(base_url=handle.url, timeout=15) as client:
        assert client.get("/").json() == {"framework": "django", "method": "GET"}
        assert client.post("/echo", content=b"shout").text == "SHOUT"
        assert client.get("/async", params={"q": "1"}).json() == {"async": True, "q": "1"}
        assert client.get("/missing").status_code == 404
