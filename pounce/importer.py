"""Turn the ``APP`` a user typed into the ASGI application object, or say exactly why not.

Accepted forms (the same ones chirp accepts, so ``app_path`` round-trips through reload):

- ``module`` means ``module:app``;
- ``module:attr`` and ``module:attr.sub`` (attribute path after the colon);
- ``module:factory()`` calls a zero-argument factory; ``factory=True`` (``--factory``) does the
  same for ``module:factory``.

Every failure is an ``AppImportError`` subclass with its own message, because each has a
different fix: the module is not on ``sys.path`` (wrong directory), the attribute is missing
(typo: we list what the module has), the user's module raised while importing (we show *their*
traceback, with importlib's and pounce's frames removed), or the object is not an ASGI app (a
class instead of an instance, a factory without ``--factory``, a wrong signature).

ASGI2-style apps (``app(scope)`` returning ``instance(receive, send)``) are wrapped into ASGI3
with an ``ASGI2AppWarning``; everything pounce serves is ASGI3.

This runs once at startup (and on reload) in the main thread; it mutates ``sys.path`` on purpose.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import sys
import traceback
import types
import warnings
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, Final, cast

from pounce.errors import AppImportError

__all__ = [
    "ASGI2AppWarning",
    "AppAttributeNotFoundError",
    "AppFactoryError",
    "AppImportRaisedError",
    "AppModuleNotFoundError",
    "AppNotASGIError",
    "AppSpecError",
    "import_app",
    "parse_app_spec",
]

DEFAULT_ATTRIBUTE: Final = "app"
_FACTORY_SUFFIX: Final = "()"
_MAX_LISTED_NAMES: Final = 20


# ---------------------------------------------------------------------------------------
# Errors: one class per fix the user has to make
# ---------------------------------------------------------------------------------------


class _AppImportProblem(AppImportError):
    """Base for the importer's errors: carries ``spec`` and pickles its extra attributes.

    ``PounceError.__reduce__`` rebuilds from the constructor's common arguments only; these
    classes add attributes, so they pickle their whole ``__dict__`` instead.
    """

    def __init__(self, message: str = "", *, spec: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.spec = spec

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message,), dict(self.__dict__))


class AppSpecError(_AppImportProblem):
    """``APP`` is not written as ``module``, ``module:attr`` or ``module:factory()``."""

    default_code = "POUNCE_APP_SPEC_INVALID"


class AppModuleNotFoundError(_AppImportProblem):
    """The module named in ``APP`` is not importable from ``sys.path``."""

    default_code = "POUNCE_APP_MODULE_NOT_FOUND"

    def __init__(
        self,
        message: str = "",
        *,
        spec: str = "",
        hint: str | None = None,
        module: str = "",
        searched: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, spec=spec, hint=hint)
        self.module = module
        self.searched = searched


class _UserCodeRaised(_AppImportProblem):
    """The user's code raised; ``user_traceback`` is its traceback with importlib's and
    pounce's frames removed, to print before the one-line message."""

    def __init__(
        self,
        message: str = "",
        *,
        spec: str = "",
        hint: str | None = None,
        user_traceback: str = "",
    ) -> None:
        super().__init__(message, spec=spec, hint=hint)
        self.user_traceback = user_traceback


class AppImportRaisedError(_UserCodeRaised):
    """The user's module raised while being imported."""

    default_code = "POUNCE_APP_IMPORT_RAISED"


class AppAttributeNotFoundError(_AppImportProblem):
    """The module imported fine but has no such attribute. ``available`` lists what it has."""

    default_code = "POUNCE_APP_ATTRIBUTE_MISSING"

    def __init__(
        self,
        message: str = "",
        *,
        spec: str = "",
        hint: str | None = None,
        available: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, spec=spec, hint=hint)
        self.available = available


class AppFactoryError(_UserCodeRaised):
    """A factory (``module:f()`` or ``--factory``) is not callable, is async, or raised."""

    default_code = "POUNCE_APP_FACTORY_FAILED"


class AppNotASGIError(_AppImportProblem):
    """The object was found but cannot be served: not callable, a class, or a wrong signature."""

    default_code = "POUNCE_APP_NOT_ASGI"


class ASGI2AppWarning(UserWarning):
    """The app uses the old two-step ASGI2 calling style; pounce wraps it into ASGI3."""


# ---------------------------------------------------------------------------------------
# Parsing the spec
# ---------------------------------------------------------------------------------------


def parse_app_spec(spec: str) -> tuple[str, tuple[str, ...], bool]:
    """Split ``APP`` into (module, attribute path, call-as-factory).

    >>> parse_app_spec("pkg.main:app.asgi")
    ('pkg.main', ('app', 'asgi'), False)
    >>> parse_app_spec("pkg.main")
    ('pkg.main', ('app',), False)
    >>> parse_app_spec("pkg.main:create()")
    ('pkg.main', ('create',), True)
    """
    text = spec.strip()
    if not text:
        raise AppSpecError(
            "APP is empty; write it as module:attribute, e.g. myproject.main:app", spec=spec
        )
    module, sep, attr_text = text.partition(":")
    if (text.endswith(".py") and not sep) or "/" in module or os.sep in module:
        raise AppSpecError(
            f"APP {spec!r} looks like a file path; pounce imports modules, so write it as "
            f"{_module_from_path(module)}:app (and use --app-dir for the directory)",
            spec=spec,
        )
    if not module or not all(part.isidentifier() for part in module.split(".")):
        raise AppSpecError(
            f"APP {spec!r}: {module!r} is not a module name; write module:attribute, "
            "e.g. myproject.main:app",
            spec=spec,
        )
    if not sep:
        return module, (DEFAULT_ATTRIBUTE,), False
    call = attr_text.endswith(_FACTORY_SUFFIX)
    if call:
        attr_text = attr_text.removesuffix(_FACTORY_SUFFIX)
    parts = tuple(attr_text.split("."))
    if not attr_text or not all(part.isidentifier() for part in parts):
        raise AppSpecError(
            f"APP {spec!r}: {attr_text!r} is not an attribute path; write module:attribute "
            "(e.g. main:app), module:attr.sub or module:factory() (arguments are not supported)",
            spec=spec,
        )
    return module, parts, call


def _module_from_path(path_text: str) -> str:
    stem = path_text.removesuffix(".py").strip("./" + os.sep)
    return ".".join(p for p in stem.replace(os.sep, "/").split("/") if p) or "module"


# ---------------------------------------------------------------------------------------
# Importing
# ---------------------------------------------------------------------------------------


def import_app(spec: str, *, factory: bool | None = False, app_dir: str | None = None) -> object:
    """Import ``spec`` and return an ASGI3 application.

    ``factory=True`` calls the named attribute with no arguments (``--factory``);
    ``factory=None`` calls it only when it looks like a factory rather than an app (a callable
    that takes no arguments), which is how chirp resolves ``module:create_app``. ``app_dir``
    (default: the working directory) is put first on ``sys.path``.
    """
    module_name, attr_path, call_in_spec = parse_app_spec(spec)
    _put_first_on_path(app_dir)
    module = _import_module(spec, module_name, sys.path[0])
    obj = _resolve_attribute(spec, module, module_name, attr_path)
    where = f"{module_name}:{'.'.join(attr_path)}"
    if call_in_spec or factory is True or (factory is None and _looks_like_factory(obj)):
        obj = _call_factory(spec, where, obj)
        where = f"the object returned by {where}()"
    return _as_asgi3(spec, where, obj)


def _put_first_on_path(app_dir: str | None) -> None:
    directory = str(Path(app_dir if app_dir is not None else os.getcwd()).resolve())
    if not sys.path or sys.path[0] != directory:
        sys.path.insert(0, directory)


def _import_module(spec: str, module_name: str, app_dir: str) -> types.ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if _is_the_module_itself(exc.name, module_name):
            raise _not_found(spec, module_name, exc.name or module_name, app_dir) from None
        raise _raised(spec, module_name, exc) from None
    except (Exception, SystemExit) as exc:
        raise _raised(spec, module_name, exc) from None


def _is_the_module_itself(missing: str | None, module_name: str) -> bool:
    """Was it *our* module (or one of its parent packages) that is missing?

    A module that exists but itself imports something missing is a different problem: the user
    has to see their traceback, not "module not found".
    """
    if missing is None:
        return False
    return module_name == missing or module_name.startswith(missing + ".")


def _not_found(spec: str, module_name: str, missing: str, app_dir: str) -> AppModuleNotFoundError:
    searched = (app_dir,)
    where = f" (looked in {app_dir} and the installed packages)"
    what = (
        f"module {module_name!r}"
        if missing == module_name
        else f"package {missing!r} (needed for {module_name!r})"
    )
    return AppModuleNotFoundError(
        f"Could not import APP {spec!r}: no {what}{where}.",
        spec=spec,
        module=module_name,
        searched=searched,
        hint="run pounce from your project directory, or pass --app-dir DIR",
    )


def _raised(spec: str, module_name: str, exc: BaseException) -> AppImportRaisedError:
    if isinstance(exc, SystemExit):
        summary = f"called sys.exit({exc.code!r})"
    else:
        summary = f"raised {_one_line(exc)}"
    return AppImportRaisedError(
        f"Importing module {module_name!r} (APP {spec!r}) {summary}; "
        "the traceback above shows where.",
        spec=spec,
        user_traceback=user_traceback(exc),
        hint="fix the error in your module; pounce has not started serving",
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _resolve_attribute(
    spec: str, module: types.ModuleType, module_name: str, attr_path: tuple[str, ...]
) -> object:
    obj: object = module
    for depth, name in enumerate(attr_path):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            owner = module_name if depth == 0 else f"{module_name}:{'.'.join(attr_path[:depth])}"
            raise _missing_attribute(spec, owner, name, obj, implicit=(":" not in spec)) from None
        except Exception as exc:  # a property or module __getattr__ that raised
            raise _raised(spec, module_name, exc) from None
    return obj


def _missing_attribute(
    spec: str, owner: str, name: str, obj: object, *, implicit: bool
) -> AppAttributeNotFoundError:
    available = tuple(_public_names(obj))
    close = difflib.get_close_matches(name, available, n=1)
    message = f"{owner!r} has no attribute {name!r}"
    if implicit:
        message += f" (APP {spec!r} means {spec}:{DEFAULT_ATTRIBUTE})"
    # Each part is a sentence of its own: "'m' has no attribute 'x'. It has: app."
    message += f"; did you mean {close[0]!r}?" if close else "."
    if available:
        shown = ", ".join(available[:_MAX_LISTED_NAMES])
        more = len(available) - _MAX_LISTED_NAMES
        message += f" It has: {shown}" + (f" and {more} more." if more > 0 else ".")
    else:
        message += " It has no public attributes."
    return AppAttributeNotFoundError(
        message,
        spec=spec,
        available=available,
        hint="point APP at the object that is your ASGI app, e.g. main:app",
    )


def _public_names(obj: object) -> Iterable[str]:
    """Names a user could have meant: public, not modules, not things imported from elsewhere."""
    if isinstance(obj, types.ModuleType):
        own = obj.__name__
        for name, value in vars(obj).items():
            if name.startswith("_") or isinstance(value, types.ModuleType):
                continue
            if (inspect.isclass(value) or inspect.isroutine(value)) and getattr(
                value, "__module__", own
            ) != own:
                continue  # `from x import Y`: not something this module defines
            yield name
        return
    yield from (n for n in dir(obj) if not n.startswith("_"))


# ---------------------------------------------------------------------------------------
# Factories and the ASGI shape
# ---------------------------------------------------------------------------------------


def _call_factory(spec: str, where: str, factory: object) -> object:
    if not callable(factory):
        raise AppFactoryError(
            f"{where} is {_kind(factory)}, not a factory function; drop --factory / the "
            "trailing '()' if it is already the app",
            spec=spec,
        )
    try:
        result = factory()
    except TypeError as exc:
        if _cannot_bind(factory, 0):
            raise AppFactoryError(
                f"{where}() needs arguments ({_signature(factory)}); a factory is called with none",
                spec=spec,
                hint="give every parameter a default, or wrap it in a function without arguments",
            ) from None
        raise _factory_raised(spec, where, exc) from None
    except (Exception, SystemExit) as exc:
        raise _factory_raised(spec, where, exc) from None
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()  # never awaited on purpose; silence the RuntimeWarning
        raise AppFactoryError(
            f"{where}() is async: it returned an awaitable instead of an app. pounce calls "
            "factories synchronously; make it a plain 'def'.",
            spec=spec,
        )
    return result


def _factory_raised(spec: str, where: str, exc: BaseException) -> AppFactoryError:
    return AppFactoryError(
        f"Calling the factory {where}() raised {_one_line(exc)}; the traceback above shows where.",
        spec=spec,
        user_traceback=user_traceback(exc),
    )


def _as_asgi3(spec: str, where: str, obj: object) -> object:
    """Accept an ASGI3 app as is, wrap an ASGI2 one, refuse everything else with a reason."""
    if inspect.isclass(obj):
        if _is_asgi2_class(obj):
            return _wrap_asgi2(where, obj)
        raise AppNotASGIError(
            f"{where} is the class {obj.__qualname__!r}, not an app instance. "
            f"Create the app in your module (app = {obj.__name__}(...)) and point APP at it, "
            "or use a factory function with --factory.",
            spec=spec,
        )
    if not callable(obj):
        extra = ""
        if callable(getattr(obj, "handle_sync", None)):
            extra = (
                " It has handle_sync (a SyncApp), but pounce also needs the ASGI __call__ to "
                "serve what handle_sync passes on."
            )
        raise AppNotASGIError(
            f"{where} is {_kind(obj)}, not an ASGI application: an ASGI app is an async "
            f"callable app(scope, receive, send).{extra}",
            spec=spec,
        )
    if not _cannot_bind(obj, 3):
        return obj
    if not _cannot_bind(obj, 1):
        return _wrap_asgi2(where, obj)
    if not _cannot_bind(obj, 0):
        raise AppNotASGIError(
            f"{where} takes no arguments, so it looks like an app factory, not an app. "
            "Pass --factory, or write APP as "
            f"{spec.removesuffix(_FACTORY_SUFFIX)}().",
            spec=spec,
        )
    raise AppNotASGIError(
        f"{where} has the signature {_signature(obj)}; an ASGI app takes (scope, receive, send).",
        spec=spec,
    )


def _looks_like_factory(obj: object) -> bool:
    return (
        callable(obj)
        and not inspect.isclass(obj)
        and _cannot_bind(obj, 3)
        and _cannot_bind(obj, 1)
        and not _cannot_bind(obj, 0)
    )


def _cannot_bind(obj: object, n_args: int) -> bool:
    """True only when the signature is known and rejects ``n_args`` positional arguments."""
    try:
        sig = inspect.signature(cast("Callable[..., object]", obj))
    except TypeError, ValueError:
        return False  # builtins and C extensions: cannot tell, so do not refuse
    try:
        sig.bind(*range(n_args))
    except TypeError:
        return True
    return False


def _is_asgi2_class(cls: type) -> bool:
    """``cls(scope)`` builds an instance whose ``__call__(receive, send)`` serves the request."""
    call = getattr(cls, "__call__", None)  # noqa: B004 - we want the instance method
    if call is None or call is type.__call__:
        return False
    try:
        sig = inspect.signature(call)
        sig.bind(None, None, None)  # self, receive, send
    except TypeError, ValueError:
        return False
    return _cannot_bind(cls, 3) and not _cannot_bind(cls, 1)


def _wrap_asgi2(where: str, app: Any) -> object:
    warnings.warn(
        f"{where} is an ASGI2-style app (app(scope) then instance(receive, send)); pounce "
        "serves it through an adapter, but ASGI2 is deprecated: make it "
        "'async def app(scope, receive, send)'.",
        ASGI2AppWarning,
        stacklevel=3,
    )
    return _ASGI2Adapter(app)


class _ASGI2Adapter:
    """Serve an ASGI2 app through the ASGI3 calling convention (one call per scope)."""

    __slots__ = ("asgi2_app",)

    def __init__(self, asgi2_app: Callable[[Any], Callable[[Any, Any], Awaitable[None]]]) -> None:
        self.asgi2_app = asgi2_app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        instance = self.asgi2_app(scope)
        await instance(receive, send)


def _kind(obj: object) -> str:
    """``obj`` in a few words, for "X is <kind>, not ...": "None", "the module os", "the int 3"."""
    if obj is None:
        return "None"
    if isinstance(obj, types.ModuleType):
        return f"the module {obj.__name__}"
    return f"the {type(obj).__name__} {_short_repr(obj)}"


def _short_repr(obj: object) -> str:
    text = repr(obj)
    return text if len(text) <= 60 else text[:57] + "..."


def _signature(obj: Any) -> str:
    try:
        return str(inspect.signature(obj))
    except TypeError, ValueError:
        return "(...)"


# ---------------------------------------------------------------------------------------
# The user's traceback, without ours
# ---------------------------------------------------------------------------------------

_POUNCE_DIR: Final = str(Path(__file__).resolve().parent) + os.sep
_IMPORTLIB_DIR: Final = str(Path(importlib.__file__ or "importlib").resolve().parent) + os.sep


def _is_machinery_frame(filename: str) -> bool:
    if filename.startswith("<frozen importlib"):
        return True
    try:
        resolved = str(Path(filename).resolve())
    except OSError, ValueError:
        return False
    return resolved.startswith((_POUNCE_DIR, _IMPORTLIB_DIR))


def user_traceback(exc: BaseException) -> str:
    """Format ``exc`` (with its chained causes) keeping only the user's frames.

    A ``SyntaxError`` keeps its file/line/caret block, which is not a frame and so survives.
    """
    te = traceback.TracebackException.from_exception(exc)
    _strip_machinery(te, set())
    return "".join(te.format())


def _strip_machinery(te: traceback.TracebackException, seen: set[int]) -> None:
    if id(te) in seen:
        return
    seen.add(id(te))
    te.stack = traceback.StackSummary.from_list(
        [f for f in te.stack if not _is_machinery_frame(f.filename)]
    )
    for chained in (te.__cause__, te.__context__):
        if chained is not None:
            _strip_machinery(chained, seen)
    for inner in te.exceptions or ():
        _strip_machinery(inner, seen)
