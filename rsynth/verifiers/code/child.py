"""The untrusted side of a code-verification run: loads the program in a fresh interpreter and
answers the harness's calls (run as a script inside the sandbox; stdlib only, no rsynth imports).

Why a process of its own: the program must share nothing with the code that judges it. The
harness (`harness.py`, this process's parent) starts this script with exec, not fork, so no
memory is inherited: the token, the tests and the expected outputs never exist here. Everything in
this process is the program's to tamper with (it may patch builtins, this script, the wire
module); it only decides what goes back over the pipe, which the harness decodes as plain data.

Usage: python -s -S child.py REQUEST_FD REPLY_FD (stdout and stderr are the harness's stderr).
Protocol (`wire.py` frames): first ["hello", [callable names], [[alias, module name], ...]]
or ["load_error"] after the program failed to load (then exit code 3); then for each request
[name, [args], [[keyword, value], ...]] one reply ["ok", value] or ["raise", type name, message].
"""

import os
import site
import sys

import wire

# Started with -S (the site module's .pth files cost ~100 ms a run on some machines); the program
# still sees the base site-packages, as a program run on its own with -s does.
sys.path.extend(p for p in site.getsitepackages() if p not in sys.path)

EXIT_LOAD_ERROR = 3


def _print_exc():
    import traceback  # only when something failed: its imports cost ~20 ms of CPU a run

    traceback.print_exc()


def _hello(ns):
    names = [k for k, v in ns.items() if not k.startswith("__") and callable(v)]
    modules = [[k, v.__name__] for k, v in ns.items() if isinstance(v, type(sys)) and type(v.__name__) is str]
    return ["hello", names, modules]


def _answer(ns, request):
    try:
        name, args, kwargs = request
        value = ns[name](*args, **dict(kwargs))
        return ["ok", wire.tag(value, opaque=True)]
    except BaseException as exc:  # SystemExit too: a call's way out is its reply, never this process's exit
        _print_exc()
        return ["raise", type(exc).__name__, str(exc)[:1000]]


def main():
    requests = os.fdopen(int(sys.argv[1]), "rb")
    replies = os.fdopen(int(sys.argv[2]), "wb")
    ns = {"__name__": "__candidate__"}
    try:
        with open("candidate.py", encoding="utf-8") as fh:
            exec(compile(fh.read(), "candidate.py", "exec"), ns)
        hello = _hello(ns)
    except BaseException:
        _print_exc()
        wire.send(replies, ["load_error"])
        os._exit(EXIT_LOAD_ERROR)
    wire.send(replies, hello)
    while True:
        request = wire.recv(requests)
        if request is None:  # the harness is done
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        reply = _answer(ns, request)
        try:
            message = wire.dumps(reply)
        except BaseException as exc:  # e.g. an output too deep to encode
            message = wire.dumps(["raise", type(exc).__name__, "the result could not be sent"])
        replies.write(message)
        replies.flush()


if __name__ == "__main__":
    main()
