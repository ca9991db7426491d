"""Constants every worker thread loads, made immortal before the threads start (3.14t).

Why: on a free-threaded build each thread that runs a function takes and drops a reference
to every constant it loads (a bytes literal, an int past 256, a tuple). For an object made
by another thread (the one that imported the module) that is an atomic operation on a
count all threads share, and threads running the same code fight over that cache line. An
immortal object has no count to change. CPython makes a code object's constants immortal
when it unmarshals the code from a ``.pyc``, but not when it compiles the module from
source: no ``.pyc`` beside it, ``PYTHONDONTWRITEBYTECODE=1`` (which most container images
set), a read-only tree. Measured on 2 vCPUs (3.14.7t): a ~2 ms pure-Python loop ran at 0.76x
its one-thread speed on two threads when its module was compiled from source, 2.0x with its
``.pyc`` (docs/benchmarks.md, "Constants shared between threads").

The cure is CPython's own: a code object round-tripped through ``marshal`` comes back equal,
with immortal constants, and ``function.__code__`` is assignable. Only functions with a
mortal constant are touched, so modules loaded from a ``.pyc`` (pip-installed packages) cost
nothing but the look. It runs once, before any worker thread exists: swapping a function's
code while another thread runs it is not something to do. Code imported later (by a worker's
lifespan, or lazily at the first request) keeps its mortal constants.
"""

from __future__ import annotations

import marshal
import sys
import threading
import types
from collections.abc import Callable, Mapping
from typing import Any, Final

from pounce._runtime import gil_enabled

__all__ = ["immortalize_constants"]

# The constant types a compiler emits that can be mortal (str constants are interned and
# immortal already; None, True, False, small ints and () always are).
_CONSTANT_TYPES: Final = (bytes, int, float, complex, tuple, frozenset, str)

# Modules already looked at, by (name, id): a process that starts several servers (tests,
# an embedding app) pays for each module once. Guarded by _lock; a reused id only means a
# module is skipped, never that a function is changed twice.
_looked_at: set[tuple[str, int]] = set()
_lock = threading.Lock()

_MODULE_DICT: Final[Any] = vars(types.ModuleType)["__dict__"]


def immortalize_constants(modules: dict[str, types.ModuleType] | None = None) -> int:
    """Give every function of ``modules`` (default: ``sys.modules``) that has a mortal
    constant an equal code object whose constants are immortal; returns how many changed.

    A no-op (0) where the interpreter cannot say what is immortal (before 3.14) or where a
    GIL serialises the threads anyway."""
    is_immortal = getattr(sys, "_is_immortal", None)
    if is_immortal is None or gil_enabled():
        return 0
    with _lock:
        return _immortalize(modules if modules is not None else sys.modules, is_immortal)


def _immortalize(
    modules: dict[str, types.ModuleType], is_immortal: Callable[[object], bool]
) -> int:
    seen: set[int] = set()
    changed = 0
    for name, module in list(modules.items()):
        key = (name, id(module))
        if key in _looked_at or not issubclass(type(module), types.ModuleType):
            continue  # sys.modules may hold other objects; they are not touched
        # The descriptor, not module.__dict__: a lazy module's __getattribute__ would import.
        namespace = _MODULE_DICT.__get__(module)
        if type(namespace) is not dict:
            continue
        _looked_at.add(key)
        try:
            functions = [
                f for value in list(namespace.values()) for f in _functions_of(value, name)
            ]
        except Exception:  # a module's odd object must never stop a server from starting
            continue
        for function in functions:
            if id(function) in seen:
                continue
            seen.add(id(function))
            code = function.__code__
            if not _has_mortal_constant(code, is_immortal):
                continue
            try:
                function.__code__ = marshal.loads(marshal.dumps(code))
            except ValueError:
                continue  # a constant marshal cannot write (code built by .replace())
            changed += 1
    return changed


def _functions_of(value: object, module_name: str) -> list[types.FunctionType]:
    """The Python functions behind a module-level name: a function, or the methods (plain,
    static, class, property accessors) of a class defined in that module.

    Only exact types and ``__dict__`` lookups: ``isinstance`` and attribute access would run
    code of the module's own objects (a lazy object such as Django's ``settings`` raises
    when anything but its owner touches it)."""
    kind = type(value)
    if kind is types.FunctionType:
        return [value]  # type: ignore[list-item]
    if not issubclass(kind, type):
        return []
    members: Mapping[str, object] = type.__dict__["__dict__"].__get__(value)
    if members.get("__module__") != module_name:
        return []
    found: list[types.FunctionType] = []
    for attribute in list(members.values()):
        member = attribute
        if type(member) is staticmethod or type(member) is classmethod:
            member = member.__func__
        if type(member) is property:
            accessors = (member.fget, member.fset, member.fdel)
            found.extend(f for f in accessors if type(f) is types.FunctionType)
        elif type(member) is types.FunctionType:
            found.append(member)
    return found


def _has_mortal_constant(code: types.CodeType, is_immortal: Callable[[object], bool]) -> bool:
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            if _has_mortal_constant(constant, is_immortal):
                return True
        elif isinstance(constant, _CONSTANT_TYPES) and not is_immortal(constant):
            return True
    return False
