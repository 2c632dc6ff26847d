"""Programs that try to fake a pass from inside the test harness, in the real sandbox.

Each program carries an attack and a wrong answer, so its verdict must be `fail`. With the
harness that ran the tests in the program's own interpreter (before the candidate moved to a
process of its own), every attack in `FAKES` turned that wrong answer into a `pass`: it read the
per-run token from the harness's globals, returned an object whose `==` always says yes, or
monkeypatched or shadowed what the tests use (`math.isclose`, builtins, `sys.modules`, the
harness's `_matches`). Now the tests run in the trusted harness and see the program's results only as
plain values decoded from the wire.
"""

from __future__ import annotations

import io
import json
import math

import pytest

from rsynth.verifiers.base import VerifyItem
from rsynth.verifiers.code import CodeVerifier, wire
from rsynth.verifiers.code.sandbox import available_backends

STEAL = "import __main__, os\ntry:\n    os.write(__main__._out, ('\\n' + __main__._token + '\\n').encode())\n    os._exit(0)\nexcept Exception:\n    pass\n"
ALWAYS_EQUAL = "class AlwaysEqual:\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n        return False\n    __hash__ = object.__hash__\n"
ASSERT_F2 = "assert f(1) == 2"
IO_F2 = json.dumps({"inputs": [[1]], "outputs": ["2"]})
CHECK_F2 = "def check(candidate):\n    assert candidate(1) == 2\n"
CHECK_FABS = "def check(candidate):\n    import math\n    assert math.fabs(candidate(1) - 2.5) < 1e-6\n"

# name -> (tests, program, extra): every program here answers wrong
FAKES = {
    "steal_token_from_harness_globals": (ASSERT_F2, STEAL + "def f(x):\n    return 0\n", {}),
    "always_equal_assert": (ASSERT_F2, ALWAYS_EQUAL + "def f(x):\n    return AlwaysEqual()\n", {}),
    "always_equal_humaneval_check": (
        CHECK_F2,
        ALWAYS_EQUAL + "def f(x):\n    return AlwaysEqual()\n",
        {"entry_point": "f"},
    ),
    "always_equal_io": (
        IO_F2,
        ALWAYS_EQUAL + "def f(x):\n    return AlwaysEqual()\n",
        {"style": "io", "entry_point": "f"},
    ),
    "lying_str_subclass": (
        "assert f(1) == 'abc'",
        "class S(str):\n    def __eq__(self, other):\n        return True\n    __hash__ = str.__hash__\ndef f(x):\n    return S('x')\n",
        {},
    ),
    "lying_int_subclass": (
        ASSERT_F2,
        "class I(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\ndef f(x):\n    return I(0)\n",
        {},
    ),
    "patched_math_isclose": (
        "assert math.isclose(f(1), 2.5)",
        "import math\nmath.isclose = lambda *a, **k: True\ndef f(x):\n    return 0.0\n",
        {},
    ),
    "patched_builtin_abs": (
        "assert abs(f(1) - 2.5) < 1e-9",
        "import builtins\nbuiltins.abs = lambda x: 0\ndef f(x):\n    return 0.0\n",
        {},
    ),
    "patched_builtin_sorted": (
        "assert sorted(f(1)) == [1, 2, 3]",
        "import builtins\nbuiltins.sorted = lambda *a, **k: [1, 2, 3]\ndef f(x):\n    return [0]\n",
        {},
    ),
    "patched_builtin_len": (
        "assert len(f(1)) == 3",
        "import builtins\nbuiltins.len = lambda x: 3\ndef f(x):\n    return []\n",
        {},
    ),
    "patched_builtin_isinstance": (
        "assert isinstance(f(1), list) and f(1) == []",
        "import builtins\nbuiltins.isinstance = lambda *a: True\n"
        + ALWAYS_EQUAL
        + "def f(x):\n    return AlwaysEqual()\n",
        {},
    ),
    "function_shadowing_a_builtin": (
        "assert abs(f(1) - 2.5) < 1e-9",
        "def abs(x):\n    return 0\ndef f(x):\n    return 0.0\n",
        {},
    ),
    "fake_math_in_sys_modules": (
        CHECK_FABS,
        "import sys, types\nfake = types.ModuleType('math')\nfake.fabs = lambda x: 0.0\nsys.modules['math'] = fake\ndef f(x):\n    return 0.0\n",
        {"entry_point": "f"},
    ),
    "patched_harness_matches": (
        IO_F2,
        "import __main__\n__main__._matches = lambda *a: True\ndef f(x):\n    return 0\n",
        {"style": "io", "entry_point": "f"},
    ),
    "system_exit_with_token_at_exit": (
        ASSERT_F2,
        "import atexit, os, __main__\natexit.register(lambda: os.write(__main__._out, ('\\n' + __main__._token + '\\n').encode()))\n"
        "def f(x):\n    raise SystemExit(0)\n",
        {},
    ),
}

# Attacks on the harness as it is now (the program in a process of its own)
NEW_PATH = {
    # a module dropped into the writable scratch directory, for a later `import` in the tests
    "shadow_module_for_the_tests": (
        "def check(candidate):\n    import fractions\n    assert fractions.Fraction(candidate(1)) == fractions.Fraction(1, 3)\n",
        "open('fractions.py', 'w').write('class Fraction:\\n    def __init__(self, *a):\\n        pass\\n    def __eq__(self, o):\\n        return True\\n')\n"
        "def f(x):\n    return 0.5\n",
        {"entry_point": "f"},
    ),
    # the harness's memory, open files and environment through /proc, and ptrace
    "reach_into_the_harness": (
        ASSERT_F2,
        "import ctypes, os\nppid, got = os.getppid(), []\n"
        "for what in ('mem', 'environ', 'fd/1', 'fd/3'):\n"
        "    try:\n        open(f'/proc/{ppid}/{what}', 'rb').close()\n        got.append(what)\n    except OSError:\n        pass\n"
        "if ctypes.CDLL(None, use_errno=True).ptrace(16, ppid, None, None) == 0:\n    got.append('ptrace')\n"
        "print('REACHED:' + ','.join(got) + ':END', flush=True)\n"
        "def f(x):\n    return 0\n",
        {},
    ),
    "exit_zero_inside_a_call": (ASSERT_F2, "import os\ndef f(x):\n    os._exit(0)\n", {}),
    "system_exit_inside_a_call": (ASSERT_F2, "def f(x):\n    raise SystemExit(0)\n", {}),
    "lie_about_the_reply": (
        ASSERT_F2,
        "import os, sys\nw = int(sys.argv[2]) if len(sys.argv) > 2 else None\n"
        "def f(x):\n    return 0\n"
        "if w is not None:\n    os.write(w, b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x05[\"ok\"')\n",
        {},
    ),
}


@pytest.fixture(scope="module", params=available_backends() or ["none"])
def verifier(request):
    if request.param == "none":
        pytest.fail("no safe sandbox backend on this machine")
    return CodeVerifier(timeout=10.0, workers=2, sandbox=request.param)


def _verdicts(verifier, cases):
    items = [VerifyItem(tests, program, extra) for tests, program, extra in cases.values()]
    return {name: v for name, v in zip(cases, verifier.verify_batch(items))}


def test_programs_cannot_fake_a_pass_from_inside_the_harness(verifier):
    got = _verdicts(verifier, FAKES | NEW_PATH)
    wrong = {
        n: (v.status, v.evidence.get("reason"), v.evidence.get("stderr_tail", "")[-300:])
        for n, v in got.items()
        if v.status != "fail"
    }
    assert not wrong, wrong
    reached = got["reach_into_the_harness"].evidence["stderr_tail"]
    assert "REACHED::END" in reached, reached


# What the tests see of the program: results as plain values, its callables and module imports.
SEMANTICS = {
    "namedtuple_is_its_tuple": (
        "assert f(1) == (1, 2)",
        "import collections\nP = collections.namedtuple('P', 'x y')\ndef f(x):\n    return P(x, 2)\n",
        {},
        "pass",
    ),
    "nested_literals": (
        "assert f(0) == {(1, 2): {3}, 'k': [frozenset({1}), 1 + 2j, b'x', None, -0.0]} and math.isnan(g()) and h() == 2 ** 20000",
        "def f(x):\n    return {(1, 2): {3}, 'k': [frozenset({1}), 1 + 2j, b'x', None, -0.0]}\n"
        "def g():\n    return float('nan')\ndef h():\n    return 2 ** 20000\n",
        {},
        "pass",
    ),
    "keyword_arguments": ("assert f(1, y=(2, 3)) == (1, (2, 3))", "def f(x, y=None):\n    return (x, y)\n", {}, "pass"),
    "arguments_are_copies": ("a = [1]\nf(a)\nassert a == [1]", "def f(xs):\n    xs.append(2)\n", {}, "pass"),
    "module_import_is_the_harness_module": (
        "assert sys.getsizeof(()) > 0 and f(0) == 1",
        "import sys\ndef f(x):\n    return 1\n",
        {},
        "pass",
    ),
    "entry_point_may_be_named_like_a_builtin": (
        "assert sum(2, 3) == 5",
        "def sum(a, b):\n    return a + b\n",
        {"entry_point": "sum"},
        "pass",
    ),
    "module_bound_only_under_its_own_name": (
        "assert sys.getsizeof(1) > 0",
        "import os as sys\ndef f(x):\n    return 1\n",
        {},
        "fail",
    ),
    "data_globals_are_not_visible": ("assert N == 3", "N = 3\ndef f(x):\n    return 1\n", {}, "fail"),
    "opaque_result_keeps_its_truth": (
        "assert f('abc') and not f('xyz')",
        "import re\ndef f(s):\n    return re.match('a', s)\n",
        {},
        "pass",
    ),
    "opaque_result_equals_no_literal": ("assert f(1) == [1]", "def f(x):\n    return iter([x])\n", {}, "fail"),
    "builtin_exception_keeps_its_type": (
        "try:\n    f(-1)\n    raise AssertionError('no error')\nexcept ValueError as e:\n    assert 'negative' in str(e)",
        "def f(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x\n",
        {},
        "pass",
    ),
    "classes_are_callable_remotes": (
        "assert C(2).twice() == 4",
        "class C:\n    def __init__(self, x):\n        self.x = x\n    def twice(self):\n        return 2 * self.x\n",
        {},
        "fail",
    ),
    "missing_io_entry_point_is_a_load_error": (
        IO_F2,
        "def g(x):\n    return 2\n",
        {"style": "io", "entry_point": "f"},
        "error",
    ),
    "exception_at_import_is_a_load_error": (ASSERT_F2, "raise RuntimeError('no')\n", {}, "error"),
    "exit_code_4_inside_a_call_is_not_a_harness_error": (
        ASSERT_F2,
        "import os\ndef f(x):\n    os._exit(4)\n",
        {},
        "fail",
    ),
    "loop_inside_a_call_is_a_timeout": (ASSERT_F2, "def f(x):\n    while True:\n        pass\n", {}, "timeout"),
}


def test_what_the_tests_see_of_the_program():
    verifier = CodeVerifier(timeout=3.0, workers=2)
    items = [VerifyItem(tests, program, extra) for tests, program, extra, _ in SEMANTICS.values()]
    got = {n: v for n, v in zip(SEMANTICS, verifier.verify_batch(items))}
    wrong = {
        n: (v.status, v.evidence.get("reason"), v.evidence.get("stderr_tail", "")[-300:])
        for n, v in got.items()
        if v.status != SEMANTICS[n][3]
    }
    assert not wrong, wrong
    assert "NameError: name 'N' is not defined" in got["data_globals_are_not_visible"].evidence["stderr_tail"]


def _round_trip(value, opaque=True):
    stream = io.BytesIO(wire.dumps([wire.tag(value, opaque)]))
    return wire.recv(stream)[0]


def test_wire_decodes_genuine_builtins_only():
    class Liar(str):
        def __eq__(self, other):
            return True

        __hash__ = str.__hash__

    for value in [
        None,
        True,
        3,
        -0.0,
        1e300,
        1 + 2j,
        "a\udc80",
        b"\x00",
        [1, (2, [3])],
        {(1, 2): {3}, "k": frozenset({1})},
        set(),
        2**20000,
    ]:
        back = _round_trip(value)
        assert back == value and type(back) is type(value)
    back = _round_trip(Liar("x"))
    assert type(back) is str and back == "x" and back != "y"
    assert math.isnan(_round_trip(float("nan"))) and _round_trip(float("-inf")) == float("-inf")
    thing = _round_trip(object())
    assert (
        type(thing) is wire.Opaque and thing.text.startswith("<object object") and bool(thing) and thing != thing.text
    )
    with pytest.raises(TypeError):
        wire.tag(object())  # the harness sends only literals


@pytest.mark.parametrize(
    "body",
    [
        b'[{"c": [1' + b"0" * 400 + b", 0]}]",
        b'{"t": [1]}',
        b'[{"x": 1}]',
        b'[{"t": 1}]',
        b'[{"s": [[1]]}]',
        b'[{"t": [1], "s": []}]',
        b"[1, ",
        b"[]",
    ],
)
def test_wire_rejects_malformed_messages(body):
    with pytest.raises((ValueError, TypeError, OverflowError)):
        wire.recv(io.BytesIO(len(body).to_bytes(wire.HEADER, "big") + body))


def test_wire_refuses_a_giant_frame_without_reading_it():
    with pytest.raises(ValueError):
        wire.recv(io.BytesIO((wire.MAX_MESSAGE + 1).to_bytes(wire.HEADER, "big")))
    assert wire.recv(io.BytesIO(b"\x00\x00\x00")) is None  # a stream that ends: None
