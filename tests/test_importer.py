"""``pounce.importer``: every accepted APP form and every failure, with real modules on disk.

Each test writes tiny modules into its own ``tmp_path`` under a unique name, imports them
through ``import_app`` exactly as the CLI does, and checks the object or the error message the
user would see. ``sys.path`` and ``sys.modules`` are restored afterwards.
"""

from __future__ import annotations

import asyncio
import importlib
import pickle
import sys
import textwrap
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pounce.errors import AppImportError, PounceError
from pounce.importer import (
    AppAttributeNotFoundError,
    AppFactoryError,
    AppImportRaisedError,
    AppModuleNotFoundError,
    AppNotASGIError,
    AppSpecError,
    ASGI2AppWarning,
    import_app,
    parse_app_spec,
)

type MakeModule = Callable[..., str]


@pytest.fixture
def make_module(tmp_path: Path) -> Iterator[MakeModule]:
    """Write ``source`` as a uniquely named module in tmp_path; return the module name."""
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)

    def make(source: str, *, name: str | None = None, package: str | None = None) -> str:
        module = name or f"pounce_test_{uuid.uuid4().hex[:12]}"
        directory = tmp_path
        if package is not None:
            directory = tmp_path / package
            directory.mkdir(exist_ok=True)
            (directory / "__init__.py").touch()
        (directory / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        importlib.invalidate_caches()  # the path finder caches directory listings
        return module if package is None else f"{package}.{module}"

    yield make
    sys.path[:] = saved_path
    for name in set(sys.modules) - saved_modules:
        del sys.modules[name]


def load(spec: str, tmp_path: Path, **kwargs: Any) -> object:
    return import_app(spec, app_dir=str(tmp_path), **kwargs)


ASGI3 = """
async def app(scope, receive, send):
    pass
"""


# ---------------------------------------------------------------------------------------
# Accepted forms
# ---------------------------------------------------------------------------------------


def test_module_colon_attribute(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module(ASGI3)
    app = load(f"{name}:app", tmp_path)
    assert app is sys.modules[name].app


def test_module_alone_means_module_colon_app(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module(ASGI3)
    assert load(name, tmp_path) is sys.modules[name].app


def test_dotted_attribute_path(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module(
        """
        class Holder:
            async def asgi(self, scope, receive, send):
                pass

        class Outer:
            inner = Holder()
        """
    )
    app = load(f"{name}:Outer.inner.asgi", tmp_path)
    assert app == sys.modules[name].Outer.inner.asgi


def test_package_submodule(make_module: MakeModule, tmp_path: Path) -> None:
    package = f"pkg_{uuid.uuid4().hex[:8]}"
    name = make_module(ASGI3, name="main", package=package)
    assert name == f"{package}.main"
    assert load(f"{name}:app", tmp_path) is sys.modules[name].app


FACTORY = """
calls = []

async def app(scope, receive, send):
    pass

def create_app():
    calls.append(1)
    return app
"""


def test_factory_call_in_spec(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module(FACTORY)
    assert load(f"{name}:create_app()", tmp_path) is sys.modules[name].app
    assert sys.modules[name].calls == [1]


def test_factory_flag(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module(FACTORY)
    assert load(f"{name}:create_app", tmp_path, factory=True) is sys.modules[name].app
    # Both forms together still call the factory once.
    assert load(f"{name}:create_app()", tmp_path, factory=True) is sys.modules[name].app
    assert sys.modules[name].calls == [1, 1]


def test_factory_auto_calls_only_factories(make_module: MakeModule, tmp_path: Path) -> None:
    """``factory=None`` (chirp's rule, for reload): call a factory, leave an app alone."""
    name = make_module(FACTORY)
    assert load(f"{name}:create_app", tmp_path, factory=None) is sys.modules[name].app
    assert load(f"{name}:app", tmp_path, factory=None) is sys.modules[name].app
    assert sys.modules[name].calls == [1]


def test_callable_instance_is_accepted_as_is(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module(
        """
        class App:
            async def __call__(self, scope, receive, send):
                pass

            def handle_sync(self, request):
                return None

        app = App()
        """
    )
    assert load(f"{name}:app", tmp_path) is sys.modules[name].app


def test_callable_without_signature_is_accepted(make_module: MakeModule, tmp_path: Path) -> None:
    """When the signature cannot be read, pounce does not guess and refuse."""
    name = make_module(
        """
        import functools

        async def _app(prefix, scope, receive, send):
            pass

        app = functools.partial(_app, "x")
        """
    )
    assert load(f"{name}:app", tmp_path) is sys.modules[name].app


def test_app_dir_goes_first_on_sys_path(make_module: MakeModule, tmp_path: Path) -> None:
    sub = tmp_path / "src"
    sub.mkdir()
    module = f"pounce_test_{uuid.uuid4().hex[:12]}"
    (sub / f"{module}.py").write_text(ASGI3, encoding="utf-8")
    importlib.invalidate_caches()
    with pytest.raises(AppModuleNotFoundError):
        load(f"{module}:app", tmp_path)  # not in tmp_path itself
    app = import_app(f"{module}:app", app_dir=str(sub))
    assert sys.path[0] == str(sub.resolve())
    assert callable(app)


def test_default_app_dir_is_the_working_directory(
    make_module: MakeModule, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = make_module(ASGI3)
    monkeypatch.chdir(tmp_path)
    assert import_app(f"{name}:app") is sys.modules[name].app
    assert sys.path[0] == str(tmp_path.resolve())


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("main", ("main", ("app",), False)),
        ("pkg.main:app", ("pkg.main", ("app",), False)),
        ("pkg.main:a.b.c", ("pkg.main", ("a", "b", "c"), False)),
        ("main:create()", ("main", ("create",), True)),
        ("  main:app  ", ("main", ("app",), False)),
    ],
)
def test_parse_app_spec(spec: str, expected: tuple[str, tuple[str, ...], bool]) -> None:
    assert parse_app_spec(spec) == expected


# ---------------------------------------------------------------------------------------
# The spec is malformed
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("", "empty"),
        (":app", "not a module name"),
        ("my-app:app", "not a module name"),
        ("main:", "not an attribute path"),
        ("main:a-b", "not an attribute path"),
        ("main:create(1)", "arguments are not supported"),
        ("main:app:extra", "not an attribute path"),
        ("src/main.py", "looks like a file path"),
        ("main.py", "looks like a file path"),
    ],
)
def test_bad_spec(spec: str, fragment: str) -> None:
    with pytest.raises(AppSpecError) as info:
        import_app(spec)
    assert fragment in str(info.value)


def test_file_path_spec_suggests_the_module_name() -> None:
    with pytest.raises(AppSpecError) as info:
        import_app("./src/main.py")
    assert "src.main:app" in str(info.value)


# ---------------------------------------------------------------------------------------
# Module not found
# ---------------------------------------------------------------------------------------


def test_module_not_found(tmp_path: Path) -> None:
    missing = f"no_such_module_{uuid.uuid4().hex[:8]}"
    with pytest.raises(AppModuleNotFoundError) as info:
        load(f"{missing}:app", tmp_path)
    error = info.value
    assert f"no module {missing!r}" in str(error)
    assert str(tmp_path.resolve()) in str(error)
    assert error.module == missing
    assert error.hint is not None and "--app-dir" in error.hint


def test_missing_parent_package_is_not_found(tmp_path: Path) -> None:
    missing = f"no_such_pkg_{uuid.uuid4().hex[:8]}"
    with pytest.raises(AppModuleNotFoundError) as info:
        load(f"{missing}.main:app", tmp_path)
    assert f"package {missing!r}" in str(info.value)


def test_a_missing_dependency_is_not_module_not_found(
    make_module: MakeModule, tmp_path: Path
) -> None:
    """The module exists; what it imports does not. The user needs their traceback."""
    dependency = f"not_installed_{uuid.uuid4().hex[:8]}"
    name = make_module(f"import os\nimport {dependency}\n")
    with pytest.raises(AppImportRaisedError) as info:
        load(f"{name}:app", tmp_path)
    error = info.value
    assert "ModuleNotFoundError" in str(error)
    assert f"import {dependency}" in error.user_traceback
    assert f"{name}.py" in error.user_traceback


# ---------------------------------------------------------------------------------------
# The module raised while importing: the user's traceback, not ours
# ---------------------------------------------------------------------------------------


def assert_only_user_frames(text: str) -> None:
    assert "importlib" not in text
    assert "<frozen" not in text
    assert "pounce/importer.py" not in text
    assert "pounce\\importer.py" not in text


def test_module_raised(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module(
        """
        def connect():
            raise RuntimeError("database is down")

        connect()
        """
    )
    with pytest.raises(AppImportRaisedError) as info:
        load(f"{name}:app", tmp_path)
    error = info.value
    assert str(error).startswith(f"Importing module {name!r}")
    assert "RuntimeError: database is down" in str(error)
    text = error.user_traceback
    assert text.startswith("Traceback (most recent call last):")
    assert f'{name}.py", line 5, in <module>' in text
    assert f'{name}.py", line 3, in connect' in text
    assert 'raise RuntimeError("database is down")' in text
    assert text.rstrip().endswith("RuntimeError: database is down")
    assert_only_user_frames(text)


def test_module_raised_keeps_the_chain(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module(
        """
        try:
            {}["missing"]
        except KeyError as exc:
            raise ValueError("bad settings") from exc
        """
    )
    with pytest.raises(AppImportRaisedError) as info:
        load(name, tmp_path)
    text = info.value.user_traceback
    assert "KeyError: 'missing'" in text
    assert "direct cause" in text
    assert "ValueError: bad settings" in text
    assert_only_user_frames(text)


def test_syntax_error_shows_file_line_and_caret(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module("x = 1\ndef broken(:\n    pass\n")
    with pytest.raises(AppImportRaisedError) as info:
        load(f"{name}:app", tmp_path)
    text = info.value.user_traceback
    assert f'{name}.py", line 2' in text
    assert "def broken(:" in text
    assert "^" in text
    assert "SyntaxError" in str(info.value)
    assert_only_user_frames(text)


def test_sys_exit_while_importing(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module("import sys\nsys.exit(3)\n")
    with pytest.raises(AppImportRaisedError) as info:
        load(f"{name}:app", tmp_path)
    assert "called sys.exit(3)" in str(info.value)


def test_property_that_raises_during_lookup(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module(
        """
        def __getattr__(name):
            raise RuntimeError("lazy app failed")
        """
    )
    with pytest.raises(AppImportRaisedError) as info:
        load(f"{name}:app", tmp_path)
    assert "lazy app failed" in str(info.value)
    assert "lazy app failed" in info.value.user_traceback


# ---------------------------------------------------------------------------------------
# Attribute missing: list what the module has
# ---------------------------------------------------------------------------------------

MANY_NAMES = """
import os
from os.path import join
from collections import OrderedDict

async def application(scope, receive, send):
    pass

def create_app():
    return application

class Settings:
    pass

DEBUG = True
_private = 1
"""


def test_attribute_missing_lists_what_the_module_has(
    make_module: MakeModule, tmp_path: Path
) -> None:
    name = make_module(MANY_NAMES)
    with pytest.raises(AppAttributeNotFoundError) as info:
        load(f"{name}:applicaton", tmp_path)
    error = info.value
    message = str(error)
    assert f"{name!r} has no attribute 'applicaton'" in message
    assert "did you mean 'application'?" in message
    assert error.available == ("application", "create_app", "Settings", "DEBUG")
    assert "It has: application, create_app, Settings, DEBUG." in message
    for not_defined_here in ("os", "join", "OrderedDict", "_private"):
        assert not_defined_here not in error.available


def test_implicit_app_attribute_is_explained(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module(MANY_NAMES)
    with pytest.raises(AppAttributeNotFoundError) as info:
        load(name, tmp_path)
    assert f"(APP {name!r} means {name}:app)" in str(info.value)


def test_attribute_missing_in_empty_module(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module("import os\n")
    with pytest.raises(AppAttributeNotFoundError) as info:
        load(f"{name}:app", tmp_path)
    assert "It has no public attributes." in str(info.value)


def test_nested_attribute_missing_names_the_parent(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module(
        """
        class Router:
            mount = None
            routes = ()

        router = Router()
        """
    )
    with pytest.raises(AppAttributeNotFoundError) as info:
        load(f"{name}:router.asgi", tmp_path)
    message = str(info.value)
    assert f"'{name}:router' has no attribute 'asgi'" in message
    assert "mount, routes" in message


def test_long_lists_are_cut(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module("\n".join(f"value_{i:02d} = {i}" for i in range(30)))
    with pytest.raises(AppAttributeNotFoundError) as info:
        load(f"{name}:app", tmp_path)
    assert "and 10 more." in str(info.value)
    assert len(info.value.available) == 30


# ---------------------------------------------------------------------------------------
# Not callable / not an ASGI app
# ---------------------------------------------------------------------------------------


def test_not_callable(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module("app = 42\n")
    with pytest.raises(AppNotASGIError) as info:
        load(f"{name}:app", tmp_path)
    message = str(info.value)
    assert f"{name}:app is the int 42, not an ASGI application" in message
    assert "app(scope, receive, send)" in message


def test_none(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module("app = None\n")
    with pytest.raises(AppNotASGIError) as info:
        load(f"{name}:app", tmp_path)
    assert f"{name}:app is None" in str(info.value)


def test_module_object(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module("import json as app\n")
    with pytest.raises(AppNotASGIError) as info:
        load(f"{name}:app", tmp_path)
    assert "is the module json" in str(info.value)


def test_class_instead_of_instance(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module(
        """
        class App:
            def __init__(self, debug=False):
                self.debug = debug

            async def __call__(self, scope, receive, send):
                pass
        """
    )
    with pytest.raises(AppNotASGIError) as info:
        load(f"{name}:App", tmp_path)
    message = str(info.value)
    assert "is the class 'App', not an app instance" in message
    assert "app = App(...)" in message


def test_factory_without_factory_flag(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module(FACTORY)
    with pytest.raises(AppNotASGIError) as info:
        load(f"{name}:create_app", tmp_path)
    message = str(info.value)
    assert "looks like an app factory" in message
    assert "--factory" in message
    assert f"{name}:create_app()" in message
    assert sys.modules[name].calls == []  # not called behind the user's back


def test_wrong_signature(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module("async def app(scope, receive):\n    pass\n")
    with pytest.raises(AppNotASGIError) as info:
        load(f"{name}:app", tmp_path)
    message = str(info.value)
    assert "(scope, receive)" in message
    assert "takes (scope, receive, send)" in message


def test_sync_app_without_asgi_call(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module(
        """
        class OnlySync:
            def handle_sync(self, request):
                return None

        app = OnlySync()
        """
    )
    with pytest.raises(AppNotASGIError) as info:
        load(f"{name}:app", tmp_path)
    assert "handle_sync" in str(info.value)


# ---------------------------------------------------------------------------------------
# Factories that fail
# ---------------------------------------------------------------------------------------


def test_factory_raised(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module(
        """
        def create_app():
            raise LookupError("no such tenant")
        """
    )
    with pytest.raises(AppFactoryError) as info:
        load(f"{name}:create_app()", tmp_path)
    error = info.value
    assert f"Calling the factory {name}:create_app() raised LookupError" in str(error)
    assert 'raise LookupError("no such tenant")' in error.user_traceback
    assert_only_user_frames(error.user_traceback)


def test_factory_needs_arguments(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module("def create_app(settings):\n    return None\n")
    with pytest.raises(AppFactoryError) as info:
        load(f"{name}:create_app", tmp_path, factory=True)
    assert "needs arguments ((settings))" in str(info.value)


def test_factory_type_error_inside_is_reported_as_raised(
    make_module: MakeModule, tmp_path: Path
) -> None:
    name = make_module("def create_app():\n    return len(5)\n")
    with pytest.raises(AppFactoryError) as info:
        load(f"{name}:create_app()", tmp_path)
    assert "raised TypeError" in str(info.value)
    assert "return len(5)" in info.value.user_traceback


def test_async_factory(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module("async def create_app():\n    return None\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine was never awaited" would fail the test
        with pytest.raises(AppFactoryError) as info:
            load(f"{name}:create_app()", tmp_path)
    assert "is async" in str(info.value)


def test_factory_flag_on_a_non_callable(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module("app = 'x'\n")
    with pytest.raises(AppFactoryError) as info:
        load(f"{name}:app", tmp_path, factory=True)
    assert "not a factory function" in str(info.value)


def test_factory_returning_a_non_app(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module("def create_app():\n    return None\n")
    with pytest.raises(AppNotASGIError) as info:
        load(f"{name}:create_app()", tmp_path)
    assert f"the object returned by {name}:create_app() is None" in str(info.value)


# ---------------------------------------------------------------------------------------
# ASGI2: warned about, and served through an adapter
# ---------------------------------------------------------------------------------------


def run_asgi(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


ASGI2_CLASS = """
class App:
    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": self.scope["path"].encode()})
"""

ASGI2_FUNCTION = """
def app(scope):
    async def asgi(receive, send):
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    return asgi
"""


def test_asgi2_class_is_wrapped(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module(ASGI2_CLASS)
    with pytest.warns(ASGI2AppWarning, match="ASGI2-style"):
        app = load(f"{name}:App", tmp_path)
    sent = run_asgi(app, {"type": "http", "path": "/hello"})
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b"/hello"


def test_asgi2_function_is_wrapped(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module(ASGI2_FUNCTION)
    with pytest.warns(ASGI2AppWarning, match="async def app"):
        app = load(f"{name}:app", tmp_path)
    assert run_asgi(app, {"type": "http", "path": "/"})[0]["status"] == 204


# ---------------------------------------------------------------------------------------
# The error types themselves
# ---------------------------------------------------------------------------------------

ERROR_TYPES = (
    AppSpecError,
    AppModuleNotFoundError,
    AppImportRaisedError,
    AppAttributeNotFoundError,
    AppFactoryError,
    AppNotASGIError,
)


def test_error_types_are_distinct_app_import_errors() -> None:
    codes = {cls.default_code for cls in ERROR_TYPES}
    assert len(codes) == len(ERROR_TYPES)
    for cls in ERROR_TYPES:
        assert issubclass(cls, AppImportError)
        assert issubclass(cls, PounceError)
        assert cls.default_code.startswith("POUNCE_APP_")


def test_errors_pickle_with_their_details(make_module: MakeModule, tmp_path: Path) -> None:
    name = make_module("raise OSError('disk full')\n")
    with pytest.raises(AppImportRaisedError) as info:
        load(f"{name}:app", tmp_path)
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is AppImportRaisedError
    assert str(copy) == str(info.value)
    assert copy.user_traceback == info.value.user_traceback
    assert copy.spec == f"{name}:app"
    assert copy.code == "POUNCE_APP_IMPORT_RAISED"
