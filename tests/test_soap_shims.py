"""Each SOAP shim of ladon_tasks.compat_soap, checked on its own."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import zeep
from conftest import make_app
from defusedxml import DefusedXmlException
from helpers import wait_until
from hostile_bodies import MALFORMED, envelope, hostile
from ladon.interfaces.soap import (
    SOAPContentHandler,
    SOAPRequestHandler,
    SOAPResponseHandler,
    SOAPServiceDescriptor,
)
from ladon.interfaces.soap11 import (
    SOAP11ContentHandler,
    SOAP11RequestHandler,
    SOAP11ResponseHandler,
    SOAP11ServiceDescriptor,
)
from ladon.ladonizer.collection import global_service_collection
from ladon.types import get_type_info
from lxml import etree
from werkzeug.test import Client

from ladon_tasks import compat, compat_soap
from ladon_tasks.soap_wsdl import ARRAYS, TEMPURI

XSD = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
REQUEST_HANDLERS = {"soap11": SOAP11RequestHandler, "soap": SOAPRequestHandler}
#: Where the hostile bodies' external references point: nothing listens there.
NOWHERE = "http://127.0.0.1:9/never-fetched"


@pytest.fixture(scope="module")
def app() -> Iterator[Any]:
    application = make_app(["soap_service", "calc_service"])
    yield application
    application.close(grace_period=5)


@pytest.fixture(scope="module")
def sinfo(app: Any) -> Any:
    return global_service_collection().services_by_name("SoapService")[0]


def parse(interface: str, body: bytes, sinfo: Any) -> dict:
    return REQUEST_HANDLERS[interface]().parse_request(body, sinfo, "UTF-8")


# -- hostile XML: the defused parser ---------------------------------------------------------


def test_the_parser_forbids_dtds_entities_and_external_references() -> None:
    parser = compat_soap.defused_parser()
    assert (parser.forbid_dtd, parser.forbid_entities, parser.forbid_external) == (True, True, True)


@pytest.mark.parametrize("interface", sorted(REQUEST_HANDLERS))
def test_both_request_handlers_are_shimmed_and_still_read_a_call(interface: str, sinfo: Any) -> None:
    handler = REQUEST_HANDLERS[interface]
    assert getattr(handler.parse_request, "_ladon_tasks_shim", False)
    req = parse(interface, envelope("add", "<a>2</a><b>3</b>"), sinfo)
    assert req == {"methodname": "add", "args": {"a": "2", "b": "3"}}


@pytest.mark.parametrize("interface", sorted(REQUEST_HANDLERS))
@pytest.mark.parametrize("name", sorted(hostile(NOWHERE)))
def test_hostile_bodies_are_refused_at_once(interface: str, name: str, sinfo: Any) -> None:
    body = hostile(NOWHERE)[name]
    started = time.perf_counter()
    with pytest.raises(DefusedXmlException) as caught:
        parse(interface, body, sinfo)
    assert time.perf_counter() - started < 0.1
    assert "root:" not in str(caught.value)


@pytest.mark.parametrize("interface", sorted(REQUEST_HANDLERS))
@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_bodies_raise_out_of_parse_request(interface: str, name: str, sinfo: Any) -> None:
    with pytest.raises(Exception):  # noqa: B017 - whatever the parser raises, it must raise
        parse(interface, MALFORMED[name], sinfo)


# -- whitespace: text kept as sent, settled by declared type ---------------------------------------

TEXTS = [" a <b ", "  leading", "trailing  ", "inner   three", "\ttabs\t", "\nlines\n\n", " ", "\n",
         "a & b", "<&>", "&amp; as text", "caf\u00e9 \u2713 ", "x" * 5000 + " " + "y" * 5000]


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


@pytest.mark.parametrize("interface", sorted(REQUEST_HANDLERS))
@pytest.mark.parametrize("text", TEXTS + ["a\r\nb\r"])
def test_string_arguments_arrive_exactly_as_sent(interface: str, text: str, sinfo: Any) -> None:
    req = parse(interface, envelope("echo", f"<text>{_xml_text(text)}</text>"), sinfo)
    assert req["args"] == {"text": text}


@pytest.mark.parametrize("interface", sorted(REQUEST_HANDLERS))
def test_cdata_and_many_chunks_are_joined_whole(interface: str, sinfo: Any) -> None:
    inner = "<text> one <![CDATA[ <raw> & ]]> two &amp;&#10;three </text>"
    assert parse(interface, envelope("echo", inner), sinfo)["args"]["text"] == " one  <raw> &  two &\nthree "


PRETTY_SHAPE = """
    <given>
      <name> spaced  name </name>
      <origin>
        <label> o </label>
        <x> 1 </x>
        <y>
          0.5
        </y>
        <visible> true </visible>
      </origin>
      <corners>
        <item>
          <label>\tc\t</label>
          <x>2</x>
          <y>1.0</y>
          <visible>false</visible>
        </item>
        <item>
          <label></label>
          <x>3</x>
          <y>1.5</y>
          <visible>true</visible>
        </item>
      </corners>
      <tags>
        <item> t </item>
        <item>   </item>
      </tags>
      <note xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/>
    </given>
"""


@pytest.mark.parametrize("interface", sorted(REQUEST_HANDLERS))
def test_pretty_printed_objects_parse_as_before_and_keep_their_strings(interface: str, sinfo: Any) -> None:
    req = parse(interface, envelope("echoShape", PRETTY_SHAPE), sinfo)
    assert req["args"] == {"given": {
        "name": " spaced  name ",
        "origin": {"label": " o ", "x": "1", "y": "0.5", "visible": "true"},
        "corners": [{"label": "\tc\t", "x": "2", "y": "1.0", "visible": "false"},
                    {"label": "", "x": "3", "y": "1.5", "visible": "true"}],
        "tags": [" t ", "   "],
        "note": None,
    }}


@pytest.mark.parametrize("interface", sorted(REQUEST_HANDLERS))
@pytest.mark.parametrize(("operation", "inner", "args"), [
    ("echoShape", "<given>\n  \n</given>", {"given": ""}),
    ("echoShape", "<given/>", {"given": ""}),
    ("echoWords", "<words>\n\t</words>", {"words": []}),
    ("echoShape", "<given><tags/><corners>\n</corners></given>", {"given": {"tags": [], "corners": []}}),
    ("echoWords", "<words>\n  <item>a </item>\n  <item> b</item>\n</words>", {"words": ["a ", " b"]}),
    ("total", "<numbers>\n  <item> 1 </item>\n  <item>\n2\n</item>\n</numbers>", {"numbers": ["1", "2"]}),
    ("add", "<a> 2 </a>\n<b>\n3\n</b>", {"a": "2", "b": "3"}),
    ("nosuchoperation", "<x> kept </x>", {"x": " kept "}),
    ("echo", "<text> kept </text><extra> kept too </extra>", {"text": " kept ", "extra": " kept too "}),
])
def test_what_is_not_a_string_is_stripped_as_before(interface: str, operation: str, inner: str, args: dict,
                                                      sinfo: Any) -> None:
    assert parse(interface, envelope(operation, inner), sinfo)["args"] == args


def test_settle_text_goes_by_declared_types(sinfo: Any) -> None:
    req = {"methodname": "echoShape", "args": {"given": {"name": " n ", "origin": " ", "tags": ["\n", " t "],
                                                         "corners": [{"x": " 4 ", "label": " l "}, "\n"]}}}
    assert compat_soap.settle_text(req, sinfo)["args"] == {"given": {
        "name": " n ", "origin": "", "tags": ["\n", " t "], "corners": [{"x": "4", "label": " l "}, ""]}}
    assert compat_soap.settle_text({"args": {"a": " 1 "}}, sinfo) == {"args": {"a": " 1 "}}
    assert compat_soap.settle_text({"methodname": "add", "args": None}, sinfo)["args"] is None


@pytest.mark.parametrize("content_handler", [SOAP11ContentHandler, SOAPContentHandler])
def test_content_handlers_collect_chunks_and_join_them_once(content_handler: type) -> None:
    assert getattr(content_handler.characters, "_ladon_tasks_shim", False)
    handler = content_handler(compat_soap.defused_parser())
    handler.state = handler.ARGS_IN
    handler.pickup_content = ""
    for chunk in [" a", " ", "<", "b ", "\n"]:
        handler.characters(chunk)
    assert handler._text_chunks == [" a", " ", "<", "b ", "\n"]
    assert handler.pickup_content == " a <b \n"
    assert handler._text_chunks == [" a <b \n"]  # joined once, not again on the next read
    handler.pickup_content = ""
    assert handler.pickup_content == ""
    handler.state = handler.ARGS_OUT
    handler.characters("outside the arguments")
    assert handler.pickup_content == ""


@pytest.mark.parametrize("interface", sorted(REQUEST_HANDLERS))
def test_long_texts_in_many_chunks_parse_in_linear_time(interface: str, sinfo: Any) -> None:
    # 400,000 chunks (every entity reference ends one): Ladon's string appends took
    # about 10 s for this body; joined once it takes a fraction of a second.
    body = envelope("echo", "<text>" + "x&amp;" * 400_000 + "</text>")
    started = time.perf_counter()
    text = parse(interface, body, sinfo)["args"]["text"]
    assert time.perf_counter() - started < 2.0
    assert text == "x&" * 400_000


# -- carriage returns in answers ---------------------------------------------------------------


@pytest.mark.parametrize("response_handler", [SOAP11ResponseHandler, SOAPResponseHandler])
@pytest.mark.parametrize("encoding", ["UTF-8", "UTF-16", "ISO-8859-1"])
def test_answers_keep_carriage_returns(response_handler: type, encoding: str) -> None:
    assert getattr(response_handler.build_response, "_ladon_tasks_keeps_cr", False)
    res_dict = {"servicename": "S", "method": "m", "result": {"text": "a\r\nb\r", "other": "no return"}}
    xml = response_handler().build_response(res_dict, None, encoding)
    texts = {element.tag.rpartition("}")[2]: element.text for element in etree.fromstring(xml).iter()}
    assert (texts["text"], texts["other"]) == ("a\r\nb\r", "no return")


@pytest.mark.parametrize("response_handler", [SOAP11ResponseHandler, SOAPResponseHandler])
def test_answers_without_carriage_returns_are_left_alone(response_handler: type) -> None:
    res_dict = {"servicename": "S", "method": "m", "result": "plain\ttext\n"}
    xml = response_handler().build_response(res_dict, None, "UTF-8")
    assert b"&#13;" not in xml and b"plain\ttext\n" in xml


def test_soap11_answers_still_declare_xsi_for_nil() -> None:
    res_dict = {"servicename": "S", "method": "m", "result": {"text": "a\r", "none": None}}
    etree.fromstring(SOAP11ResponseHandler().build_response(res_dict, None, "UTF-8"))  # xsi is bound


# -- the /soap WSDL ----------------------------------------------------------------------------


def wsdl_of(app: Any, service: str, interface: str = "soap") -> etree._Element:
    answer = Client(app).get(f"/{service}/{interface}/description")
    assert answer.status_code == 200
    return etree.fromstring(answer.get_data())


def schemas(wsdl: etree._Element) -> dict[str, etree._Element]:
    found = {schema.get("targetNamespace"): schema for schema in wsdl.iter(f"{{{XSD}}}schema")}
    assert len(found) == 2
    return found


def resolve(element: etree._Element, qname: str) -> tuple[str, str]:
    prefix, _, local = qname.rpartition(":")
    return element.nsmap[prefix or None], local


def test_the_soap_descriptor_is_shimmed_and_soap11s_is_not() -> None:
    assert getattr(SOAPServiceDescriptor.generate, "_ladon_tasks_shim", False)
    assert not getattr(SOAP11ServiceDescriptor.generate, "_ladon_tasks_shim", False)


@pytest.mark.parametrize("service", ["SoapService", "CalcService"])
def test_every_ladontype_is_declared_with_every_field_in_both_namespaces(app: Any, service: str) -> None:
    from ladon.types.typemanager import TypeManager

    by_namespace = schemas(wsdl_of(app, service))
    declared = {cls.__name__: cls for cls in TypeManager.global_type_dict}
    for namespace, schema in by_namespace.items():
        types = {node.get("name"): node for node in schema.findall(f"{{{XSD}}}complexType")}
        ladon_types = {name for name in types if not name.startswith("ArrayOf")}
        assert {"TaskInfoResponse", "TaskProgressResponse"} <= ladon_types
        for name in ladon_types:
            elements = list(types[name].iter(f"{{{XSD}}}element"))
            attributes = get_type_info(declared[name])["attributes"]
            wanted = [field.replace("_", "-") for field, _type, _props in attributes]
            assert [element.get("name") for element in elements] == wanted, (namespace, name)
            for element, (_field, field_type, _props) in zip(elements, attributes, strict=True):
                if isinstance(field_type, list):
                    array = f"ArrayOf{field_type[0].__name__}"
                    assert resolve(element, element.get("type")) == (ARRAYS, array)
                    assert element.get("nillable") == "true" and element.get("minOccurs") == "0"
                elif get_type_info(field_type):
                    assert resolve(element, element.get("type")) == (namespace, field_type.__name__)


@pytest.mark.parametrize("service", ["SoapService", "CalcService"])
def test_every_type_reference_resolves(app: Any, service: str) -> None:
    by_namespace = schemas(wsdl_of(app, service))
    defined = {(namespace, node.get("name")) for namespace, schema in by_namespace.items()
               for node in schema if node.get("name")}
    builtins = {"long", "string", "boolean", "double"}
    for schema in by_namespace.values():
        for element in schema.iter(f"{{{XSD}}}element"):
            if element.get("type") is None:
                continue
            namespace, local = resolve(element, element.get("type"))
            assert (namespace, local) in defined or (namespace == XSD and local in builtins), element.attrib


def test_the_wsdl_has_an_operation_and_two_messages_per_method(app: Any) -> None:
    wsdl = wsdl_of(app, "SoapService")
    sinfo = global_service_collection().services_by_name("SoapService")[0]
    names = {method.name() for method in sinfo.method_list()}
    assert {"makeShape", "makeShape_progress", "makeShape_result", "add"} <= names
    messages = {message.get("name") for message in wsdl.iter(f"{{{WSDL}}}message")}
    assert messages == names | {f"{name}Response" for name in names}
    port_type = wsdl.find(f"{{{WSDL}}}portType")
    assert {operation.get("name") for operation in port_type.iter(f"{{{WSDL}}}operation")} == names
    binding = wsdl.find(f"{{{WSDL}}}binding")
    assert {operation.get("name") for operation in binding.findall(f"{{{WSDL}}}operation")} == names
    address = wsdl.find(f"{{{WSDL}}}service/{{{WSDL}}}port/{{http://schemas.xmlsoap.org/wsdl/soap/}}address")
    assert address.get("location").endswith("/SoapService/soap")


def xml_schema(wsdl: etree._Element, directory: Path) -> etree.XMLSchema:
    """The WSDL's two schemas as one XMLSchema (lxml needs the import's location)."""
    by_namespace = schemas(wsdl)
    (directory / "arrays.xsd").write_bytes(etree.tostring(by_namespace[ARRAYS]))
    tempuri = etree.fromstring(etree.tostring(by_namespace[TEMPURI]))
    tempuri.find(f"{{{XSD}}}import").set("schemaLocation", "arrays.xsd")
    (directory / "tempuri.xsd").write_bytes(etree.tostring(tempuri))
    return etree.XMLSchema(etree.parse(str(directory / "tempuri.xsd")))


#: (operation, arguments): answers of every shape, empty lists and None included.
CALLS = [
    ("add", "<a>2</a><b>3</b>"), ("echo", "<text> a </text>"), ("echo", "<text></text>"),
    ("echoWords", "<words><item> a </item><item/></words>"), ("echoWords", "<words/>"),
    ("total", "<numbers><item>1</item></numbers>"),
]
TASKS = [
    ("double", "<value>3</value>"), ("echoText", "<text> t </text>"), ("half", "<value>3</value>"),
    ("negate", "<value>true</value>"), ("series", "<count>3</count>"), ("series", "<count>0</count>"),
    ("makePoint", "<label>p</label><index>1</index>"), ("makeShape", "<name>s</name><count>2</count>"),
    ("makeShape", "<name>s</name><count>0</count>"), ("makeDrawing", "<title>d</title><count>2</count>"),
]


def answer(app: Any, operation: str, inner: str) -> etree._Element:
    """The one element in the Body of a /soap answer, after checking it parses namespaced."""
    response = Client(app).post("/SoapService/soap", data=envelope(operation, inner), content_type="text/xml")
    assert response.status_code == 200, response.get_data()
    body = etree.fromstring(response.get_data()).find(f"{{{SOAP_ENV}}}Body")
    (element,) = list(body)
    return element


def test_every_soap_answer_is_valid_for_its_wsdl(app: Any, tmp_path: Path) -> None:
    schema = xml_schema(wsdl_of(app, "SoapService"), tmp_path)
    answers = [answer(app, operation, inner) for operation, inner in CALLS]
    for operation, inner in TASKS:
        task_id = answer(app, operation, inner).findtext(f"{{{TEMPURI}}}task-id")

        def done(operation: str = operation, task_id: str = task_id) -> list[etree._Element]:
            progress = answer(app, f"{operation}_progress", f"<task-id>{task_id}</task-id>")
            return [progress] if progress.findtext(f"{{{TEMPURI}}}done") == "true" else []

        answers += wait_until(done, message=f"{operation} to end")
        answers.append(answer(app, f"{operation}_result", f"<task-id>{task_id}</task-id>"))
    nils = 0
    for element in answers:
        nils += len(element.xpath("//*[@xsi:nil]", namespaces={"xsi": XSI}))
        assert schema.validate(etree.ElementTree(element)), (etree.tostring(element), schema.error_log)
    assert nils >= 4  # empty lists and a None field were among them


def test_zeep_loads_the_wsdl_and_knows_every_type(app: Any, tmp_path: Path) -> None:
    path = tmp_path / "soap.wsdl"
    path.write_bytes(etree.tostring(wsdl_of(app, "CalcService")))
    client = zeep.Client(str(path))
    progress = client.get_element(f"{{{TEMPURI}}}echoInt_progressResponse")
    assert [name for name, _element in progress.type.elements] == [
        "attempt", "cancel-requested", "createtime", "done", "duration", "endtime", "error", "eta",
        "expected-duration", "health", "message", "poll-after", "progress", "silent-for", "starttime",
        "state", "task-id"]
    assembly = client.get_type(f"{{{TEMPURI}}}Assembly")
    assert [name for name, _element in assembly.elements] == [
        "codes", "count", "label", "main", "ok", "parts"]
    assert client.get_type(f"{{{ARRAYS}}}ArrayOfPart")


# -- applying ----------------------------------------------------------------------------------


def _patched() -> list[Callable]:
    return [SOAP11RequestHandler.parse_request, SOAPRequestHandler.parse_request,
            SOAP11ContentHandler.characters, SOAPContentHandler.characters,
            SOAP11ResponseHandler.build_response, SOAPResponseHandler.build_response,
            SOAPServiceDescriptor.generate]


def test_apply_is_idempotent_and_applied_by_compat() -> None:
    assert compat_soap._applied
    before = _patched()
    compat.apply()
    compat_soap.apply()
    compat_soap._patch_soap_parsers()
    compat_soap._patch_soap_text()
    compat_soap._patch_soap_carriage_returns()
    compat_soap._patch_soap_wsdl()
    assert _patched() == before
    assert all(getattr(function, "_ladon_tasks_shim", False) for function in before)


def test_an_absurdly_long_xml_name_is_refused_before_parsing() -> None:
    from ladon.interfaces.soap11 import SOAP11RequestHandler

    from ladon_tasks.compat_soap import MAX_XML_NAME

    template = ('<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body>'
                '<ns:{0} xmlns:ns="urn:S"><v><![CDATA[{1}]]></v><!--{1}--></ns:{0}></e:Body></e:Envelope>')
    long_text = "x" * 5000

    class NoMethods:
        def method(self, name: str) -> None:
            return None

    with pytest.raises(ValueError, match="longer than"):
        body = template.format("m" * (MAX_XML_NAME + 1), "").encode()
        SOAP11RequestHandler().parse_request(body, NoMethods(), "UTF-8")
    # Long text, CDATA and comments are no names: that body parses (and names its operation).
    body = template.format("op", long_text).encode()
    parsed = SOAP11RequestHandler().parse_request(body, NoMethods(), "UTF-8")
    assert parsed["methodname"] == "op"
