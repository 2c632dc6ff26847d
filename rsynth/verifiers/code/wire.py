"""The wire between the code harness and the process running the untrusted program: tagged JSON
that decodes to genuine builtins only (stdlib only; shipped into the sandbox as `wire.py`).

Why: the tests compare what the program returned, in the harness's own interpreter. If that value
were the program's object, its `__eq__` could say True to anything (or it could be a `str`
subclass that lies). Over the wire it is data: the decoder builds only None, bool, int, float
(nan and infinities included), complex, str, bytes, list, tuple, set, frozenset and dict, the
types of the test literals; whatever else the program returns (an object, a generator, a regex
match) arrives as an `Opaque` stand-in that carries its type name, repr and truth value and
equals only another stand-in with the same type and repr (as the repr comparison of non-literal
outputs did before). Nothing of the program's runs in the harness.

A message is one JSON array, framed by an 8-byte big-endian length. Inside it, every JSON object
is a tag with one key: {"t": [...]} tuple, {"s": [...]} set, {"z": [...]} frozenset,
{"d": [[k, v], ...]} dict, {"c": [re, im]} complex, {"i": "0x.."} a huge int (JSON text of
ints is capped at 4300 digits), {"b": "hex"} bytes, {"o": [type, repr, truth]} an opaque value.
Subclasses of the builtin types are sent as their builtin value (a namedtuple as a tuple).
"""

import json

MAX_MESSAGE = 1 << 30  # bytes; a longer frame is a protocol error, not a gigabyte allocation
HEADER = 8
BIG_INT_BITS = 8192  # past this, an int travels as hex (4300-digit cap of int <-> str)


class Opaque:
    """A value the wire cannot carry, as the harness sees it: type name, repr and truth only."""

    __slots__ = ("type_name", "text", "truth")

    def __init__(self, type_name, text, truth):
        self.type_name, self.text, self.truth = type_name, text, truth

    def __repr__(self):
        return self.text

    def __bool__(self):
        return self.truth

    def __eq__(self, other):
        return type(other) is Opaque and (self.type_name, self.text) == (other.type_name, other.text)

    def __hash__(self):
        return hash((self.type_name, self.text))


def tag(value, opaque=False):
    """`value` as JSON-ready data. With `opaque`, a value of any other type becomes an opaque tag
    (the program's side); without, it is a TypeError (the harness sends only test literals)."""
    t = type(value)
    if value is None or t is bool or t is str or t is float:
        return value
    if t is int:
        return value if value.bit_length() <= BIG_INT_BITS else {"i": hex(value)}
    if t is list:
        return [tag(v, opaque) for v in value]
    if t is tuple:
        return {"t": [tag(v, opaque) for v in value]}
    if t is dict:
        return {"d": [[tag(k, opaque), tag(v, opaque)] for k, v in value.items()]}
    if t is set or t is frozenset:
        return {"s" if t is set else "z": [tag(v, opaque) for v in value]}
    if t is complex:
        return {"c": [value.real, value.imag]}
    if t is bytes:
        return {"b": value.hex()}
    for base in (int, float, str, bytes, complex, list, tuple, dict, set, frozenset):
        if isinstance(value, base):  # a subclass: its builtin value, whatever its methods say
            return tag(_plain(base, value), opaque)
    if opaque:
        return {"o": [t.__name__, repr(value), bool(value)]}
    raise TypeError(f"a {t.__name__} cannot be sent to the program (only literal values)")


def _plain(base, value):
    if base is complex:
        return complex(complex.real.__get__(value), complex.imag.__get__(value))
    if base in (int, float, str):
        return {int: int.__int__, float: float.__float__, str: str.__str__}[base](value)
    if base is dict:
        return {k: dict.__getitem__(value, k) for k in dict.__iter__(value)}
    return base(base.__iter__(value)) if base is not bytes else bytes(memoryview(value))


def _untag(obj):
    if len(obj) != 1:
        raise ValueError("a wire object must be one tag")
    ((key, v),) = obj.items()
    if key == "t" and type(v) is list:
        return tuple(v)
    if key in ("s", "z") and type(v) is list:
        return set(v) if key == "s" else frozenset(v)
    if key == "d" and type(v) is list and all(type(p) is list and len(p) == 2 for p in v):
        return {k: x for k, x in v}
    if key == "c" and type(v) is list and len(v) == 2 and all(type(x) in (int, float) for x in v):
        return complex(v[0], v[1])
    if key == "i" and type(v) is str:
        return int(v, 16)
    if key == "b" and type(v) is str:
        return bytes.fromhex(v)
    if (
        key == "o"
        and type(v) is list
        and len(v) == 3
        and type(v[0]) is str
        and type(v[1]) is str
        and type(v[2]) is bool
    ):
        return Opaque(*v)
    raise ValueError(f"unknown wire tag {key!r}")


def dumps(message):
    """A message (a list) as wire bytes, framed."""
    body = json.dumps(message, separators=(",", ":")).encode("ascii")
    return len(body).to_bytes(HEADER, "big") + body


def send(stream, message):
    stream.write(dumps(message))
    stream.flush()


def recv(stream):
    """The next message (a list of decoded values), or None at the end of the stream. A malformed
    frame raises ValueError (or TypeError, RecursionError, OverflowError: a set of lists, a too
    deep value, a complex part past the float range)."""
    head = stream.read(HEADER)
    if len(head) < HEADER:
        return None
    size = int.from_bytes(head, "big")
    if size > MAX_MESSAGE:
        raise ValueError(f"a message of {size} bytes")
    body = stream.read(size)
    if len(body) < size:
        return None
    message = json.loads(body, object_hook=_untag)
    if type(message) is not list or not message:
        raise ValueError("a message must be a non-empty array")
    return message
