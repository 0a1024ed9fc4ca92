"""The WSDL of Ladon's document/literal SOAP interface (``/soap``), written to describe
exactly what that interface sends and reads.

Ladon 1.0.7's own generator declares every type in one schema whose target namespace
is the arrays namespace, refers to them as ``tns:`` (``http://tempuri.org/``), and
declares only the last field of each LadonType answer, so no strict client can read
it. What the interface sends (``SOAPResponseHandler``) is:

- ``<mResponse xmlns="http://tempuri.org/">`` holding the fields of a LadonType answer
  directly, or a ``<result>`` element for any other answer;
- a list as ``<item xmlns="ARRAYS">`` elements inside its element, so everything inside
  an item (the fields of a LadonType item, and theirs) is in the arrays namespace too;
- ``xsi:nil="true"`` for an empty list and for None;
- a float as Python writes it (``7.3e-05``): ``xsd:double``, not Ladon's ``xsd:decimal``.

So every LadonType is declared twice, once per namespace, with the same fields: the
``tns:`` one for fields met outside lists, the ``arr:`` one for list items.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator
from xml.etree import ElementTree

from ladon.compat import type_to_xsd
from ladon.types import get_type_info

TEMPURI = "http://tempuri.org/"
ARRAYS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
_NAMESPACES = {
    "xmlns": "http://schemas.xmlsoap.org/wsdl/",
    "xmlns:soap": "http://schemas.xmlsoap.org/wsdl/soap/",
    "xmlns:mime": "http://schemas.xmlsoap.org/wsdl/mime/",
    "xmlns:xsd": "http://www.w3.org/2001/XMLSchema",
    "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "xmlns:tns": TEMPURI,
    "xmlns:arr": ARRAYS,
}
_HTTP_TRANSPORT = "http://schemas.xmlsoap.org/soap/http"
#: Ladon's XSD names, but floats as ``double``: the interface writes Python's ``repr``
#: (``7.3e-05``), which ``xsd:decimal`` (Ladon's choice) does not allow.
_XSD_TYPES = {**type_to_xsd, float: "double"}
#: The prefix of each of the two schemas' namespaces.
_PREFIX = {TEMPURI: "tns", ARRAYS: "arr"}

Element = ElementTree.Element
_sub = ElementTree.SubElement


def describe(servicename: str, methods: Iterable[Any], service_url: str) -> str:
    """The WSDL document of one service's ``/soap`` interface."""
    methods = list(methods)
    definitions = Element("definitions", {**_NAMESPACES, "name": servicename, "targetNamespace": TEMPURI})
    types = _sub(definitions, "types")
    types.append(_arrays_schema(methods))
    types.append(_tempuri_schema(methods))
    for method in methods:
        _messages(definitions, method.name())
    port_type = _sub(definitions, "portType", name=f"{servicename}PortType")
    for method in methods:
        _port_operation(port_type, method)
    binding = _sub(definitions, "binding", name=servicename, type=f"tns:{servicename}PortType")
    _sub(binding, "soap:binding", style="document", transport=_HTTP_TRANSPORT)
    for method in methods:
        _binding_operation(binding, method, service_url)
    service = _sub(definitions, "service", name=servicename)
    _sub(service, "documentation").text = "Ladon generated service definition"
    port = _sub(service, "port", name=servicename, binding=f"tns:{servicename}")
    _sub(port, "soap:address", location=service_url)
    return '<?xml version="1.0"?>' + ElementTree.tostring(definitions, encoding="unicode")


# -- types ------------------------------------------------------------------------------


def _arrays_schema(methods: list[Any]) -> Element:
    """The ``ArrayOfX`` types, and the LadonTypes as they appear inside list items."""
    schema = _schema(ARRAYS)
    for item_type in _list_item_types(methods):
        sequence = _sub(_sub(schema, "xsd:complexType", name=array_name(item_type)), "xsd:sequence")
        _sub(sequence, "xsd:element", name="item", type=_type_ref(item_type, ARRAYS),
             minOccurs="0", maxOccurs="unbounded", nillable="true")
    for ladon_type in _ladon_types(methods):
        _complex_type(schema, ladon_type, ARRAYS)
    return schema


def _tempuri_schema(methods: list[Any]) -> Element:
    """The LadonTypes outside lists, and each operation's request and answer elements."""
    schema = _schema(TEMPURI)
    _sub(schema, "xsd:import", namespace=ARRAYS)
    for ladon_type in _ladon_types(methods):
        _complex_type(schema, ladon_type, TEMPURI)
    for method in methods:
        request = _sub(_sub(schema, "xsd:element", name=method.name()), "xsd:complexType")
        sequence = _sub(request, "xsd:sequence")
        for arg in method.args():
            optional = "default" in arg or isinstance(arg["type"], (list, tuple))
            _field(sequence, arg["name"], arg["type"], TEMPURI, optional=optional,
                   nillable=isinstance(arg["type"], (list, tuple)))
        _answer_element(schema, method)
    return schema


def _answer_element(schema: Element, method: Any) -> None:
    rtype = method._rtype
    name = f"{method.name()}Response"
    if get_type_info(rtype):
        # The interface writes the fields straight into <mResponse>.
        _sub(schema, "xsd:element", name=name, type=_type_ref(rtype, TEMPURI))
        return
    sequence = _sub(_sub(_sub(schema, "xsd:element", name=name), "xsd:complexType"), "xsd:sequence")
    is_list = isinstance(rtype, (list, tuple))
    _field(sequence, "result", rtype, TEMPURI, optional=is_list, nillable=True)


def _schema(namespace: str) -> Element:
    return Element("xsd:schema", {"targetNamespace": namespace, "elementFormDefault": "qualified"})


def _complex_type(schema: Element, ladon_type: type, namespace: str) -> None:
    sequence = _sub(_sub(schema, "xsd:complexType", name=ladon_type.__name__), "xsd:sequence")
    for name, declared, props in get_type_info(ladon_type)["attributes"]:
        is_list = isinstance(declared, (list, tuple))
        nullable = props.get("nullable") is True
        optional = is_list or nullable or props.get("default") is not None
        _field(sequence, name, declared, namespace, optional=optional, nillable=is_list or nullable)


def _field(sequence: Element, name: str, declared: Any, namespace: str, *, optional: bool,
           nillable: bool) -> None:
    element = _sub(sequence, "xsd:element", name=name.replace("_", "-"), type=_type_ref(declared, namespace))
    if optional:
        element.set("minOccurs", "0")
    if nillable:
        element.set("nillable", "true")


def _type_ref(declared: Any, namespace: str) -> str:
    """The QName of ``declared`` as met in ``namespace``: lists are always ``arr:``."""
    if isinstance(declared, (list, tuple)):
        return f"arr:{array_name(declared[0])}"
    if get_type_info(declared):
        return f"{_PREFIX[namespace]}:{declared.__name__}"
    return f"xsd:{_XSD_TYPES.get(declared, declared.__name__)}"


def array_name(item_type: type) -> str:
    """The name of the type of a list of ``item_type``, as Ladon names it."""
    return f"ArrayOf{item_type.__name__}"


def _declared_types(methods: list[Any]) -> Iterator[Any]:
    """Every type the service's operations take or answer, nested ones included, once."""
    seen: set[Any] = set()
    pending = [arg["type"] for method in methods for arg in method.args()]
    pending += [method._rtype for method in methods]
    while pending:
        declared = pending.pop(0)
        key = ("list", declared[0]) if isinstance(declared, (list, tuple)) else declared
        if key in seen:
            continue
        seen.add(key)
        yield declared
        if isinstance(declared, (list, tuple)):
            pending.append(declared[0])
        elif get_type_info(declared):
            pending += [field_type for _name, field_type, _props in get_type_info(declared)["attributes"]]


def _ladon_types(methods: list[Any]) -> list[type]:
    found = [declared for declared in _declared_types(methods)
             if not isinstance(declared, (list, tuple)) and get_type_info(declared)]
    return sorted(found, key=lambda ladon_type: ladon_type.__name__)


def _list_item_types(methods: list[Any]) -> list[type]:
    found = [declared[0] for declared in _declared_types(methods) if isinstance(declared, (list, tuple))]
    return sorted(found, key=lambda item_type: item_type.__name__)


# -- messages, port type, binding ------------------------------------------------------------


def _messages(definitions: Element, name: str) -> None:
    for message in (name, f"{name}Response"):
        _sub(_sub(definitions, "message", name=message), "part", name="parameters", element=f"tns:{message}")


def _port_operation(port_type: Element, method: Any) -> None:
    operation = _sub(port_type, "operation", name=method.name())
    if method.__doc__:
        _sub(operation, "documentation").text = method.__doc__
    _sub(operation, "input", message=f"tns:{method.name()}")
    _sub(operation, "output", message=f"tns:{method.name()}Response")


def _binding_operation(binding: Element, method: Any, service_url: str) -> None:
    operation = _sub(binding, "operation", name=method.name())
    _sub(operation, "soap:operation", soapAction=f"{service_url}/{method.name()}", style="document")
    _literal_body(_sub(operation, "input"), method._multipart_request_required)
    _literal_body(_sub(operation, "output"), method._multipart_response_required)


def _literal_body(parent: Element, multipart: bool) -> None:
    """``<soap:body use="literal"/>``, inside a MIME multipart when attachments travel with it."""
    if multipart:
        related = _sub(parent, "mime:multipartRelated")
        parent = _sub(related, "mime:part")
        _sub(_sub(related, "mime:part"), "mime:content", type="*/*")
    _sub(parent, "soap:body", use="literal")
