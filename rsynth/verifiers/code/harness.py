"""The trusted side of one code-verification run (run as `main.py` inside the sandbox; stdlib only,
no rsynth imports): it holds the tests and the expected outputs and runs the program in a process
of its own.

Why two processes: when the tests ran in the program's interpreter, the program could read the
per-run token from the harness's globals and print it, return an object whose `__eq__` always
says True, or monkeypatch what the tests use (`math.isclose`, builtins, `sys.modules`, the
comparison function). Now:
1. This process makes itself non-dumpable (PR_SET_DUMPABLE 0) before it reads anything secret,
   so a process of the same user without CAP_SYS_PTRACE (the sandboxes drop every capability)
   can neither ptrace it nor open its /proc/PID/mem, environ or fd/.
2. It imports everything it needs, then drops the scratch directory (writable by the program)
   from sys.path: a module the program writes there is never imported here.
3. It reads the token and the spec into memory and deletes their files.
4. It starts the program with exec, not fork (`child.py` in a fresh interpreter: nothing of
   this process's memory is inherited), with its stdout sent to stderr and a private pipe pair.
5. The tests run here. Every top-level callable of the program is a `Remote` here (except names
   that would shadow a builtin, unless it is the entry point): calling it sends the arguments
   over the pipe, and the result comes back through `wire`, which decodes only literal types
   (anything else is an `Opaque` stand-in compared by repr), so what the tests compare is a
   genuine builtin whose `__eq__` cannot lie. Standard-library modules the program imported at
   top level under their own names are this process's own import of the same module; any other
   global of the program is invisible to the tests (a NameError, so the test fails).
6. A pass is this process reaching its end and writing the token to the real stdout.
If the program dies, this process ends the same way (its exit code, or its signal), as when the
two shared one interpreter: `os._exit(0)` in a call is "exited before the tests finished", a CPU
limit kill a timeout. A malformed reply is a failure.

Usage: python -s -S main.py (in the scratch directory with token, spec.json, candidate.py,
child.py, wire.py, mbpp_types.py).
"""

import ctypes

PR_SET_DUMPABLE = 4
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:  # first of all
    raise SystemExit(4)  # EXIT_HARNESS_ERROR

# Imports come after the prctl on purpose. ast, signal and traceback are imported where they are
# used (on the io path, or when something failed): with re and enum they cost ~25 ms of CPU a run.
# Imported later is still safe: by then the scratch directory is off sys.path.
import builtins  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import site  # noqa: E402
import sys  # noqa: E402

import mbpp_types  # noqa: E402
import wire  # noqa: E402

EXIT_LOAD_ERROR = 3  # the program did not load (syntax error, exception at import, missing entry point)
EXIT_HARNESS_ERROR = 4  # raised above, before anything else
SIGKILL = 9
NOT_IMPORTED = {"antigravity", "this"}  # standard modules whose import does something


class ProgramError(Exception):
    """An exception the program raised whose type is not a builtin one (its type name is in the message)."""


def _raised(type_name, message):
    cls = getattr(builtins, type_name, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(message)
        except Exception:  # a builtin whose constructor wants more (UnicodeDecodeError)
            pass
    return ProgramError(f"{type_name}: {message}")


class Program:
    """The program in its own interpreter, called over two pipes."""

    def __init__(self):
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        os.set_inheritable(request_r, True)
        os.set_inheritable(reply_w, True)
        argv = [sys.executable, "-s", "-S", "child.py", str(request_r), str(reply_w)]
        self.pid = os.posix_spawn(sys.executable, argv, os.environ)
        os.close(request_r)
        os.close(reply_w)
        self._requests = os.fdopen(request_w, "wb")
        self._replies = os.fdopen(reply_r, "rb")
        hello = self._receive()
        if hello == ["load_error"]:
            self.close()
            os._exit(EXIT_LOAD_ERROR)
        if len(hello) != 3 or hello[0] != "hello" or type(hello[1]) is not list or type(hello[2]) is not list:
            self._violated(f"a bad greeting {hello!r:.200}")
        self.names = {n for n in hello[1] if type(n) is str}
        self.modules = [m for m in hello[2] if type(m) is list and len(m) == 2 and all(type(s) is str for s in m)]

    def call(self, name, args, kwargs):
        """What the program's `name(*args, **kwargs)` returned, as plain data; its exception re-raised here."""
        message = wire.dumps([name, [wire.tag(a) for a in args], [[k, wire.tag(v)] for k, v in kwargs.items()]])
        try:
            self._requests.write(message)
            self._requests.flush()
        except BrokenPipeError:
            self._gone()
        reply = self._receive()
        if reply[0] == "ok" and len(reply) == 2:
            return reply[1]
        if reply[0] == "raise" and len(reply) == 3 and type(reply[1]) is str and type(reply[2]) is str:
            raise _raised(reply[1], reply[2])
        self._violated(f"a bad reply {reply!r:.200}")

    def _receive(self):
        try:
            message = wire.recv(self._replies)
        except Exception as exc:  # malformed, too deep, too big (a complex of 10**400), out of memory
            self._violated(f"an undecodable reply ({type(exc).__name__}: {exc})")
        if message is None:
            self._gone()
        return message

    def _gone(self):
        """The program ended (or closed its pipe): end this process the same way."""
        _, status = os.waitpid(self.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        print(
            f"the program ended during the tests ({f'signal {-code}' if code < 0 else f'exit code {code}'})",
            file=sys.stderr,
            flush=True,
        )
        if code < 0:
            import signal

            try:
                signal.signal(-code, signal.SIG_DFL)
            except (OSError, ValueError):  # SIGKILL, SIGSTOP: always the default
                pass
            os.kill(os.getpid(), -code)
            os._exit(128 - code)  # PID 1 of a namespace (unshare) ignores its own signals: 128 + N, as bwrap reports
        os._exit(1 if code == EXIT_HARNESS_ERROR else code)  # 4 would read as this harness's own failure

    def _violated(self, why):
        print(f"the program broke the call protocol: {why}", file=sys.stderr, flush=True)
        self.close()
        os._exit(1)

    def close(self):
        try:
            os.kill(self.pid, SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


class Remote:
    """A top-level callable of the program as the tests see it: called in the program's process."""

    def __init__(self, program, name):
        self._program, self.__name__ = program, name

    def __call__(self, *args, **kwargs):
        return self._program.call(self.__name__, args, kwargs)

    def __repr__(self):
        return f"<function {self.__name__} of the program>"


def _callables(program, entry_point):
    """The program's callables the tests may see: never a dunder name, nor one that would shadow a
    builtin the tests use (a top-level `def abs(x): return 0` would make `abs(got - want) < eps`
    pass), unless it is the entry point itself (Mbpp/126's is `sum`)."""
    return {
        n: Remote(program, n)
        for n in program.names
        if n.isidentifier() and not n.startswith("__") and (not hasattr(builtins, n) or n == entry_point)
    }


def _modules(pairs):
    """The program's top-level module imports, as this process's own standard-library modules,
    bound only under their own names (`import os as sys` binds nothing)."""
    found = {}
    for alias, name in pairs:
        if alias == name.partition(".")[0] and alias in sys.stdlib_module_names and alias not in NOT_IMPORTED:
            try:
                found[alias] = __import__(name)  # the top-level package, as `import os.path` binds os
            except Exception:
                pass
    return found


def _close(got, want, atol):
    if atol and isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        return math.isclose(got, want, rel_tol=0.0, abs_tol=atol) or (math.isnan(got) and math.isnan(want))
    if atol and isinstance(want, (list, tuple)) and type(got) is type(want) and len(got) == len(want):
        return all(_close(g, w, atol) for g, w in zip(got, want))
    return got == want


def _floats(v):
    return isinstance(v, float) or (isinstance(v, (list, tuple)) and bool(v) and all(isinstance(i, float) for i in v))


def _expected(text):
    import ast

    try:
        return ast.literal_eval(text), False
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text, True  # e.g. nan or an object repr: compare reprs instead


def _matches(got, want, atol, oracle):
    value, as_repr = _expected(want)
    if oracle == "any":
        return True
    if oracle == "not_none":
        return (got is not None) == (value is not None)
    if oracle == "zero_or_exact" and got == 0:
        return True
    if as_repr:
        return repr(got) == want
    if not atol and _floats(value):
        atol = 1e-6
    return _close(got, value, atol)


def _entry(program, spec):
    if spec.get("entry_point") not in program.names:
        print(f"the program defines no function {spec.get('entry_point')!r}", file=sys.stderr, flush=True)
        program.close()
        os._exit(EXIT_LOAD_ERROR)
    return spec["entry_point"]


def run_assert(program, spec, _inputs):
    """MBPP asserts or a HumanEval `check(candidate)`, here, with the program's callables as remotes."""
    ns = {"__name__": "__candidate__", **_modules(program.modules), **_callables(program, spec.get("entry_point"))}
    ns["math"] = math  # MBPP asserts use math.isclose without importing it
    exec(compile(spec["tests"], "tests.py", "exec"), ns)
    if spec.get("entry_point") and "def check" in spec["tests"]:
        ns["check"](ns[spec["entry_point"]])
    return ""


def run_io(program, spec, inputs):
    name = _entry(program, spec)
    for i, (args, want) in enumerate(zip(inputs, spec["outputs"])):
        got = program.call(name, args, {})
        if not _matches(got, want, spec.get("atol") or 0, spec.get("oracle") or "exact"):
            print(f"case {i}: expected {want[:200]}, got {repr(got)[:200]}", file=sys.stderr)
            return None
    return ""


def run_record(program, spec, inputs):
    name = _entry(program, spec)
    return json.dumps([repr(program.call(name, args, {})) for args in inputs])


def _take(name):
    with open(name, encoding="utf-8") as fh:
        text = fh.read()
    os.remove(name)
    return text


def main():
    here = os.path.dirname(os.path.realpath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != here]
    sys.path.extend(site.getsitepackages())  # started with -S; the tests may import installed packages
    token = _take("token")
    spec = json.loads(_take("spec.json"))
    inputs = spec.get("inputs") or []
    if spec.get("fix_types"):  # MBPP+: tuples, sets, complex numbers back
        inputs = mbpp_types.restore_inputs(spec["fix_types"], inputs)
    out = os.dup(1)
    os.dup2(2, 1)  # prints (the tests', the program's) go to stderr; only the token goes to stdout
    program = Program()
    try:
        payload = {"assert": run_assert, "io": run_io, "record": run_record}[spec["style"]](program, spec, inputs)
    except BaseException:
        import traceback

        traceback.print_exc()
        payload = None
    program.close()
    sys.stdout.flush()
    if payload is None:
        os._exit(1)
    with os.fdopen(out, "wb") as fh:
        fh.write((payload + "\n" + token + "\n").encode())


if __name__ == "__main__":
    main()
