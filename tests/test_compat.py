"""Each Ladon shim of ladon_tasks.compat, checked on its own on the running Python."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_app
from helpers import wait_until
from ladon.compat import PORTABLE_STRING
from ladon.types.ladontype import LadonType
from werkzeug.test import Client

from ladon_tasks import compat

LADON_MODULES = [
    "ladon.interfaces",
    "ladon.interfaces.soap11",
    "ladon.interfaces.soap",
    "ladon.interfaces.jsonwsp",
    "ladon.interfaces.jsonrpc10",
    "ladon.server.wsgi_application",
    "ladon.clients.jsonwsp",
    "ladon.ladonizer",
    "ladon.types.typemanager",
]

_IMPORT_CHECK = """
import importlib, json, sys
import ladon_tasks
for name in {modules!r}:
    importlib.import_module(name)
imp = sys.modules.get("imp")
print(json.dumps({{"imp_loaded": imp is not None,
                  "imp_is_real": imp is not None and hasattr(imp, "find_module")}}))
"""


# -- getargspec ---------------------------------------------------------------------------


def _sample(self, a, b=2, *rest, c, d=4, **options):
    return a


def test_getargspec_shim_returns_the_old_four_fields():
    spec = compat.getargspec(_sample)
    assert spec.args == ["self", "a", "b"]
    assert spec.varargs == "rest"
    assert spec.keywords == "options"
    assert spec.defaults == (2,)
    assert tuple(spec) == (spec.args, spec.varargs, spec.keywords, spec.defaults)


def test_getargspec_shim_without_defaults_or_stars():
    spec = compat.getargspec(lambda x, y: None)
    assert spec == (["x", "y"], None, None, None)


def test_ladon_modules_see_getargspec_but_the_standard_library_is_untouched():
    import ladon.ladonizer.collection as collection
    import ladon.types.tasktype as tasktype

    assert not hasattr(inspect, "getargspec")  # removed in 3.11; we never put it back
    for module in (collection, tasktype):
        spec = module.inspect.getargspec(_sample)
        assert spec.keywords == "options"
        assert module.inspect.getfullargspec is inspect.getfullargspec


# -- LadonType attributes -------------------------------------------------------------------


class Leaf(LadonType):
    name = PORTABLE_STRING
    weight = float


class Tree(LadonType):
    """A type with a list, a nested type and a dict-declared attribute."""

    label = PORTABLE_STRING
    leaves = [Leaf]
    root = Leaf
    sizes = [int]
    note = {"type": PORTABLE_STRING, "doc": "free text"}

    def grow(self):
        # An assignment to self in a method fills __static_attributes__ on 3.13.
        self.label = "grown"


def _attribute_names(cls: type) -> list[str]:
    from ladon.types.typemanager import TypeManager

    manager = TypeManager()
    manager.analyze_param(cls)
    return [name for name, _type, _props in manager.type_dict[cls]["attributes"]]


def test_ladontype_fields_are_only_the_declared_ones():
    assert _attribute_names(Tree) == ["label", "leaves", "note", "root", "sizes"]
    assert _attribute_names(Leaf) == ["name", "weight"]


def test_interpreter_class_attributes_are_never_fields():
    # What Python 3.13 adds to every class statement, put there by hand so that the
    # check means the same on every Python.
    cls = type("Planted", (LadonType,), {
        "__module__": __name__,
        "__firstlineno__": 12,
        "__static_attributes__": ("label",),
        "label": PORTABLE_STRING,
        "leaves": [Leaf],
    })
    assert _attribute_names(cls) == ["label", "leaves"]


def test_jsonwsp_description_lists_only_declared_fields():
    client = Client(make_app(["calc_service"]))
    answer = client.get("/CalcService/jsonwsp/description")
    assert answer.status_code == 200
    types = json.loads(answer.get_data(as_text=True))["types"]
    assert set(types["Assembly"]) == {"label", "count", "ok", "main", "parts", "codes"}
    assert types["Assembly"]["parts"]["type"] == ["Part"]
    assert types["Assembly"]["main"]["type"] == "Part"
    assert set(types["Part"]) == {"name", "weight"}
    for fields in types.values():
        assert not any(name.startswith("__") for name in fields), fields


# -- service docstrings -----------------------------------------------------------------------


def test_service_docstring_reaches_the_service_page(live_server):
    import urllib.request

    server = live_server(make_app(["calc_service"]))
    with urllib.request.urlopen(f"{server.url}/CalcService", timeout=30) as answer:
        page = answer.read().decode("utf-8")
    assert "Test tasks over every result type." in page


def test_service_docstring_on_the_page_via_test_client():
    client = Client(make_app(["fault_service"]))
    answer = client.get("/FaultService")
    assert answer.status_code == 200
    assert "Tasks that let the tests kill workers, break Redis and stress progress." in answer.get_data(
        as_text=True)


# -- Ladon's JSON-WSP client -----------------------------------------------------------------


def test_ladon_jsonwsp_client_parses_the_description_and_calls(live_server):
    from ladon.clients.jsonwsp import JSONWSPClient

    server = live_server(make_app(["calc_service"]))
    client = JSONWSPClient(description=f"{server.url}/CalcService/jsonwsp/description")
    assert {"add", "echoInt", "echoInt_progress", "echoInt_result"} <= set(client.list_methods())

    answer = client.add(a=20, b=22)
    assert answer.status == 200
    assert answer.response_dict["result"] == 42

    started = client.echoInt(value=7).response_dict["result"]
    task_id = started["task_id"]
    wait_until(lambda: client.echoInt_progress(task_id=task_id).response_dict["result"]["done"],
               message="echoInt to end")
    assert client.echoInt_result(task_id=task_id).response_dict["result"] == 7


def test_ladon_jsonwsp_client_headers_are_not_shared_between_clients(live_server):
    from ladon.clients.jsonwsp import JSONWSPClient

    server = live_server(make_app(["calc_service"]))
    url = f"{server.url}/CalcService/jsonwsp/description"
    first = JSONWSPClient(description=url)
    first.add_header("X-Only-First", "1")
    second = JSONWSPClient(description=url)
    assert "X-Only-First" not in second.get_all_headers()
    assert second.add(a=1, b=2).response_dict["result"] == 3


# -- importing without warnings ----------------------------------------------------------------


def _import_in_subprocess(tmp_path: Path, fresh_bytecode: bool) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    if fresh_bytecode:
        # Compile every module from source, as on a host without .pyc files: that is when
        # Ladon's invalid escape sequences warn.
        env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    completed = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-W", "error::SyntaxWarning",
         "-c", _IMPORT_CHECK.format(modules=LADON_MODULES)],
        capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _check_imp(state: dict) -> None:
    if sys.version_info >= (3, 12):
        assert not state["imp_loaded"], "the placeholder 'imp' module was left in sys.modules"
    else:
        # 3.11 still has the real module; the placeholder must never replace it.
        assert not state["imp_loaded"] or state["imp_is_real"]


def test_import_with_warnings_as_errors(tmp_path):
    _check_imp(_import_in_subprocess(tmp_path, fresh_bytecode=False))


def test_import_with_warnings_as_errors_compiling_from_source(tmp_path):
    _check_imp(_import_in_subprocess(tmp_path, fresh_bytecode=True))


def test_imp_placeholder_is_not_left_in_this_process():
    if sys.version_info >= (3, 12):
        assert "imp" not in sys.modules
    else:
        imp = sys.modules.get("imp")
        assert imp is None or hasattr(imp, "find_module")


@pytest.mark.parametrize("name", LADON_MODULES)
def test_ladon_modules_import_after_ladon_tasks(name):
    module = compat.import_ladon_module(name)
    assert module.__name__ == name


def test_apply_is_idempotent():
    from ladon.types import typemanager

    shimmed = typemanager.get_userdef_class_attributes
    compat.apply()
    compat.apply()
    assert typemanager.get_userdef_class_attributes is shimmed
