"""Make Ladon 1.0.7 import and run on Python 3.11 to 3.13 without touching its files.

Each shim below answers one Ladon bug, is applied once, and is scoped as narrowly as
the bug allows: names are replaced inside Ladon's own modules, never in the standard
library. :func:`apply` is idempotent and is called when :mod:`ladon_tasks` is imported.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import inspect
import sys
import threading
import types
import warnings
from collections import namedtuple
from typing import Any, Iterator

from ladon_tasks import compat_soap

_applied = False
_lock = threading.Lock()

#: Attributes Python 3.13 puts on every class statement; Ladon takes them for fields.
_INTERPRETER_CLASS_ATTRIBUTES = frozenset({"__firstlineno__", "__static_attributes__"})

ArgSpec = namedtuple("ArgSpec", "args varargs keywords defaults")


def getargspec(func: Any) -> ArgSpec:
    """The ``inspect.getargspec`` that Python 3.11 removed, built on ``getfullargspec``."""
    spec = inspect.getfullargspec(func)
    return ArgSpec(spec.args, spec.varargs, spec.varkw, spec.defaults)


class _InspectWithGetargspec(types.ModuleType):
    """``inspect`` as seen from Ladon's modules: the real module plus ``getargspec``."""

    getargspec = staticmethod(getargspec)

    def __getattr__(self, name: str) -> Any:
        return getattr(inspect, name)


@contextlib.contextmanager
def _quiet_ladon_import() -> Iterator[None]:
    """Silence Ladon's own deprecation noise, and nothing else, while its modules load.

    Ladon's sources hold invalid escape sequences (SyntaxWarning on first compile) and
    use ``ast.Str``; those warnings are about Ladon's code, which users cannot change.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=SyntaxWarning, module=r"ladon(\.|$)")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ladon(\.|$)")
        # Compile-time warnings are named after the file, not the module; Python 3.11
        # reports invalid escapes as DeprecationWarning, 3.12+ as SyntaxWarning.
        warnings.filterwarnings("ignore", category=SyntaxWarning, message=r"invalid escape")
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r"invalid escape")
        yield


@contextlib.contextmanager
def _stub_imp_module() -> Iterator[None]:
    """Ladon's ``ladon.interfaces`` does ``import imp`` (gone in 3.12) but never uses it.

    A placeholder ``imp`` is visible only while that import runs.
    """
    if importlib.util.find_spec("imp") is not None:
        yield
        return
    placeholder = types.ModuleType("imp", "placeholder for Ladon's unused 'import imp'")
    sys.modules["imp"] = placeholder
    try:
        yield
    finally:
        if sys.modules.get("imp") is placeholder:
            del sys.modules["imp"]


def _patch_getargspec() -> None:
    """``LadonMethodInfo`` calls ``inspect.getargspec`` (removed in 3.11) on every method."""
    import ladon.ladonizer.collection as collection
    import ladon.types.tasktype as tasktype

    shimmed = _InspectWithGetargspec("inspect")
    collection.inspect = shimmed  # type: ignore[attr-defined]
    tasktype.inspect = shimmed  # type: ignore[attr-defined]


def _patch_class_attributes() -> None:
    """Python 3.13 adds ``__firstlineno__``/``__static_attributes__`` to classes, and
    Ladon's type manager takes every unknown class attribute for a LadonType field."""
    import ladon.types.typemanager as typemanager

    original = typemanager.get_userdef_class_attributes
    if getattr(original, "_ladon_tasks_shim", False):
        return

    def get_userdef_class_attributes(cls: type, exclude_methods: bool = True) -> list:
        names = original(cls, exclude_methods)
        return [name for name in names if name not in _INTERPRETER_CLASS_ATTRIBUTES]

    get_userdef_class_attributes._ladon_tasks_shim = True  # type: ignore[attr-defined]
    typemanager.get_userdef_class_attributes = get_userdef_class_attributes


def _patch_service_docstrings() -> None:
    """Ladon looks for class docstrings as ``ast.Str`` nodes, which Python 3.8+ parses as
    ``ast.Constant``; the service docstring never reached the service page. We fill the
    doc lines in after Ladon's own parse of the source file."""
    from ladon.ladonizer.collection import LadonServiceCollection

    original = LadonServiceCollection.source_info
    if getattr(original, "_ladon_tasks_shim", False):
        return

    def source_info(self: Any, fname: str) -> dict:
        fresh = fname not in self.src_info
        with _quiet_ladon_import():
            info = original(self, fname)
        if fresh:
            with open(fname, "rb") as source:
                tree = ast.parse(source.read())
            for node in tree.body:
                if isinstance(node, ast.ClassDef) and node.name in info:
                    doc = ast.get_docstring(node)
                    first, last, lines = info[node.name]
                    if doc and not lines:
                        info[node.name] = (first, last, doc.split("\n"))
        return info

    source_info._ladon_tasks_shim = True  # type: ignore[attr-defined]
    LadonServiceCollection.source_info = source_info  # type: ignore[method-assign]


def _patch_jsonwsp_client() -> None:
    """``JSONWSPClient.parse_description`` builds its methods with ``exec`` and an
    unimported ``types`` module, which fails on every Python 3; and its header dict
    default is shared between calls. We give it working versions of both methods."""
    from ladon.clients import jsonwsp

    client_class = jsonwsp.JSONWSPClient
    if getattr(client_class.parse_description, "_ladon_tasks_shim", False):
        return

    def parse_description(self: Any) -> None:
        response = self.post_request("", "", via_proxy=self.via_proxy)
        charset = jsonwsp.probe_charset(response.headers)
        self.jsonwsp_description = jsonwsp.json.loads(str(response.response_body, charset))
        self.parse_url(self.jsonwsp_description["url"])
        for method_name in self.jsonwsp_description["methods"]:
            setattr(self, method_name, _bound_caller(self, method_name))
        self.description_loaded = True

    original_headers = client_class.get_all_headers

    def get_all_headers(self: Any, extra_headers: dict | None = None) -> dict:
        self.header_dict = dict(self.header_dict or {})
        headers = original_headers(self, dict(extra_headers or {}))
        if not headers.get("Cookie"):
            headers.pop("Cookie", None)
        return headers

    parse_description._ladon_tasks_shim = True  # type: ignore[attr-defined]
    client_class.parse_description = parse_description
    client_class.get_all_headers = get_all_headers


def _bound_caller(client: Any, method_name: str) -> Any:
    def call(**kw: Any) -> Any:
        return client.call_method(method_name, **kw)

    call.__name__ = method_name
    return call


_XSI_DECLARATION = b' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


def _patch_soap11_nil() -> None:
    """Ladon's SOAP 1.1 responses write ``xsi:nil="true"`` for empty lists and None but
    never declare the ``xsi`` prefix, so strict clients (zeep) reject the whole answer."""
    from ladon.interfaces.soap11 import SOAP11ResponseHandler

    original = SOAP11ResponseHandler.build_response
    if getattr(original, "_ladon_tasks_shim", False):
        return

    def build_response(self: Any, res_dict: dict, sinfo: Any, encoding: str) -> bytes:
        xml = original(self, res_dict, sinfo, encoding)
        if b"xsi:nil" in xml and b"xmlns:xsi=" not in xml:
            xml = xml.replace(b"<SOAP-ENV:Envelope", b"<SOAP-ENV:Envelope" + _XSI_DECLARATION, 1)
        return xml

    build_response._ladon_tasks_shim = True  # type: ignore[attr-defined]
    SOAP11ResponseHandler.build_response = build_response


def _quiet_splitport() -> None:
    """Ladon's JSON-WSP client calls ``urllib.parse.splitport``, deprecated since 3.8."""
    from ladon.clients import jsonwsp

    def splitport(netloc: str) -> tuple[str, str | None]:
        host, sep, port = netloc.rpartition(":")
        if sep and port.isdigit():
            return host, port
        return netloc, None

    jsonwsp.splitport = splitport


def import_ladon_module(name: str) -> types.ModuleType:
    """Import one of Ladon's modules with the shims in force and its noise silenced."""
    apply()
    with _quiet_ladon_import():
        return importlib.import_module(name)


def apply() -> None:
    """Apply every shim once. Safe to call from any thread, any number of times."""
    global _applied
    if _applied:
        return
    with _lock:
        if _applied:
            return
        with _quiet_ladon_import(), _stub_imp_module():
            importlib.import_module("ladon.interfaces")
            importlib.import_module("ladon.server.wsgi_application")
            importlib.import_module("ladon.clients.jsonwsp")
            _patch_getargspec()
            _patch_class_attributes()
            _patch_service_docstrings()
            _patch_jsonwsp_client()
            _patch_soap11_nil()
            _quiet_splitport()
            compat_soap.apply()
        _applied = True
