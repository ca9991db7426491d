"""Constants shared by worker threads are immortal (``workers/shared_constants.py``).

On 3.14t a function compiled from source (no ``.pyc``, ``PYTHONDONTWRITEBYTECODE=1``) has
mortal constants, and threads running it fight over their reference counts: a CPU-bound
handler ran at 0.7x its one-thread speed on two worker threads (docs/benchmarks.md,
"Constants shared between threads"). The modules here are compiled with ``compile()``, which
is what an import without a ``.pyc`` does, so the constants start mortal on every run.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import FREE_THREADED
from support.pounce_cli import PounceServer, launch, pounce_servers, write_report_app
from support.subprocess_server import ServerGroup

from pounce.workers.shared_constants import immortalize_constants

SOURCE = """
def plain():
    return 0x7FFFFFFF, b"plain-bytes"


def outer():
    def inner():
        return 0xDEADBEEF, b"inner-bytes"
    return inner


class Thing:
    def method(self):
        return 0xCAFEBABE, b"method-bytes"

    @staticmethod
    def static():
        return 0xBADF00D, b"static-bytes"

    @classmethod
    def klass(cls):
        return 0xFACADE, b"class-bytes"

    @property
    def prop(self):
        return 0xABCDEF, b"prop-bytes"
"""


def _module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(SOURCE, f"<{name}>", "exec"), module.__dict__)
    return module


def _constants(value: tuple[int, bytes]) -> list[bool]:
    return [sys._is_immortal(part) for part in value]  # type: ignore[attr-defined]


def _all_results(module: types.ModuleType) -> list[tuple[int, bytes]]:
    thing = module.Thing()
    return [
        module.plain(),
        module.outer()(),
        thing.method(),
        module.Thing.static(),
        module.Thing.klass(),
        thing.prop,
    ]


@pytest.mark.skipif(not FREE_THREADED, reason="a no-op with the GIL on")
def test_functions_compiled_from_source_get_immortal_constants() -> None:
    module = _module("shared_constants_case")
    before = _all_results(module)
    if any(any(_constants(result)) for result in before):
        pytest.skip("this interpreter already makes compile()'s constants immortal")
    # plain, outer (its nested inner's constants), method, static, klass, the property getter
    assert immortalize_constants({module.__name__: module}) == 6
    after = _all_results(module)
    assert after == before  # the same code, only its constants' reference counts differ
    for result in after:
        assert _constants(result) == [True, True], result
    # Looked at once: a second server in the same process pays nothing for it.
    assert immortalize_constants({module.__name__: module}) == 0


@pytest.mark.skipif(not FREE_THREADED, reason="a no-op with the GIL on")
def test_a_constant_marshal_cannot_write_leaves_the_function_alone() -> None:
    module = _module("shared_constants_unmarshallable")
    odd = module.plain.__code__.replace(
        co_consts=(*module.plain.__code__.co_consts, object())  # no compiler emits this
    )
    module.plain.__code__ = odd
    assert immortalize_constants({module.__name__: module}) == 5  # all but plain
    assert module.plain.__code__ is odd
    assert module.plain() == (0x7FFFFFFF, b"plain-bytes")


class _Untouchable:
    """Raises when anything reads an attribute, as Django's unconfigured ``settings`` does."""

    def __getattribute__(self, name: str) -> object:
        raise RuntimeError(f"touched: {name}")


class _LazyModule(types.ModuleType):
    """Imports on any attribute access, as importlib's LazyLoader modules do."""

    def __getattribute__(self, name: str) -> object:
        raise RuntimeError(f"imported by reading {name}")


@pytest.mark.skipif(not FREE_THREADED, reason="a no-op with the GIL on")
def test_objects_that_run_code_when_touched_are_not_touched() -> None:
    module = _module("shared_constants_with_lazy_objects")
    module.settings = _Untouchable()
    lazy = _LazyModule("shared_constants_lazy")
    modules = {module.__name__: module, "shared_constants_lazy": lazy, "odd": _Untouchable()}
    assert immortalize_constants(modules) == 6  # the rest of the module is still done
    assert _constants(module.plain()) == [True, True]


@pytest.mark.skipif(FREE_THREADED, reason="the GIL build has nothing to gain")
def test_the_gil_build_leaves_code_as_it_is() -> None:
    module = _module("shared_constants_gil")
    code = module.plain.__code__
    assert immortalize_constants({module.__name__: module}) == 0
    assert module.plain.__code__ is code


PRELUDE = """
import sys


def handler_constant():
    return 0xFEEDFACE  # an int past 256: mortal when this module is compiled from source
"""
REPORT = "'immortal' if sys._is_immortal(handler_constant()) else 'mortal'"


@pytest.fixture
def servers() -> Iterator[ServerGroup[PounceServer]]:
    with pounce_servers() as group:
        yield group


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_a_served_app_runs_with_immortal_constants_on_worker_threads(
    servers: ServerGroup[PounceServer], tmp_path: Path, mode: str
) -> None:
    # A fresh directory: the app module has no .pyc, so the server compiles it from source.
    write_report_app(tmp_path / "constapp.py", PRELUDE, REPORT)
    server = launch(
        servers, ["constapp:app", "--workers", "2", "--worker-mode", mode], cwd=tmp_path
    )
    # Every worker up (a listening port is not that with worker processes): a stop before
    # then is a Ctrl-C during start-up, which exits 130 by design.
    server.wait_listening().wait_text("serving on")
    response = httpx.get(server.url + "/", timeout=30)
    code, _ = server.stop()
    assert code == 0, server.describe()
    # Worker threads on 3.14t; worker processes with the GIL on, where nothing is changed.
    assert response.text == ("immortal" if FREE_THREADED else "mortal")
