"""SOAP request bodies that no parser may expand, fetch or choke on, for the shim and the
live hostile-XML tests."""

from __future__ import annotations

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


def envelope(operation: str, inner: str, prolog: str = "") -> bytes:
    """A SOAP 1.1 call of ``operation`` with ``inner`` as its arguments; ``prolog`` goes
    between the XML declaration and the envelope (a DOCTYPE)."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>{prolog}<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}">'
            f'<SOAP-ENV:Body><ns:{operation} xmlns:ns="http://tempuri.org/">{inner}</ns:{operation}>'
            f"</SOAP-ENV:Body></SOAP-ENV:Envelope>").encode()


def billion_laughs() -> bytes:
    """Ten levels of ten references: 10**9 'lol's from under 1 kB."""
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{level} "{("&lol%d;" % (level - 1)) * 10}">' for level in range(1, 10))
    return envelope("echo", "<text>&lol9;</text>", f"<!DOCTYPE lolz [{entities}]>")


def quadratic_blowup() -> bytes:
    """One 50 kB entity referenced 20,000 times: 1 GB of text, no nesting."""
    return envelope("echo", "<text>" + "&big;" * 20_000 + "</text>",
                    f'<!DOCTYPE x [<!ENTITY big "{"B" * 50_000}">]>')


def xxe_file() -> bytes:
    """An external entity that reads the server's /etc/passwd into the argument."""
    return envelope("echo", "<text>&xxe;</text>", '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>')


def xxe_http(url: str) -> bytes:
    """An external entity that makes the server fetch ``url``."""
    return envelope("echo", "<text>&xxe;</text>", f'<!DOCTYPE x [<!ENTITY xxe SYSTEM "{url}">]>')


def external_dtd(url: str) -> bytes:
    """A DOCTYPE whose DTD is fetched from ``url``."""
    return envelope("echo", "<text>t</text>", f'<!DOCTYPE x SYSTEM "{url}">')


def parameter_entity(url: str) -> bytes:
    """An external parameter entity, expanded inside the DTD itself."""
    return envelope("echo", "<text>t</text>", f'<!DOCTYPE x [<!ENTITY % remote SYSTEM "{url}"> %remote;]>')


def dtd_only() -> bytes:
    """A document that is nothing but a DTD."""
    return b'<?xml version="1.0"?><!DOCTYPE Envelope [<!ELEMENT Envelope ANY>]>'


def harmless_dtd() -> bytes:
    """A valid call with an internal DTD that declares nothing dangerous: refused too."""
    return envelope("echo", "<text>t</text>", "<!DOCTYPE SOAP-ENV:Envelope [<!ELEMENT text (#PCDATA)>]>")


MALFORMED = {
    "unclosed": b'<?xml version="1.0"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="' + SOAP_ENV.encode() + b'"><SOAP',
    "mismatched": envelope("echo", "<text>t</txet>"),
    "undefined entity": envelope("echo", "<text>&nope;</text>"),
    "two roots": envelope("echo", "<text>t</text>") + b"<again/>",
    "empty": b"",
    "garbage": b"\xff\xfe\xfa\x00 not xml \x80\x81\x82",
    "latin-1 bytes, no declaration": b"<Envelope><Body><echo><text>caf\xe9</text></echo></Body></Envelope>",
}


def hostile(url: str) -> dict[str, bytes]:
    """Every body that must be refused, by name; ``url`` is where external references
    point (a listener that records whether anything connected)."""
    return {
        "billion laughs": billion_laughs(),
        "quadratic blowup": quadratic_blowup(),
        "xxe file": xxe_file(),
        "xxe http": xxe_http(url),
        "external dtd": external_dtd(url),
        "parameter entity": parameter_entity(url),
        "dtd only": dtd_only(),
        "harmless dtd": harmless_dtd(),
    }
