"""Lean 4 proof checking: many theorems per Lean process, messages mapped back to each theorem.

Verdicts: proved | error | sorry | timeout.

Why it is built this way:
- Starting Lean is the expensive part (the npm wasm Lean 4 takes ~2m45s and 3.6 GB per
  run), so a batch is written into one file, each item in its own `namespace` so that two
  candidates may both call their theorem `foo`, and the messages are mapped back by line range.
- A proof is accepted only if its item has no error, no "declaration uses `sorry`" warning, and its
  text contains none of the escape hatches (`sorry`, `admit`, `axiom`, `unsafe`, `implemented_by`,
  `extern`, `#exit`, `skipKernelTC`); comments are stripped first so a comment cannot trip this.
  The wasm Lean refuses `#print axioms` ("cannot use in a module"), so new axioms are refused by
  this scan rather than by asking Lean.
- Success is the *absence* of messages, so the file ends with a sentinel declaration that must fail
  with a known error: if Lean stops early (crash, out of memory), the sentinel error is missing and
  every item without its own error becomes `error` instead of a false `proved`.
- `maxHeartbeats` bounds each declaration inside the shared process (Lean's deterministic timeout
  becomes that item's `timeout`); the whole process also has a wall-clock limit.
- An error's position is mapped to the failing tactic line, which gives tactic proofs step labels.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsynth.verifiers.base import Verdict, Verifier, VerifyItem

SENTINEL_NAME = "rsynth_end_sentinel_missing"
SENTINEL = f"theorem rsynth_end_sentinel : False := {SENTINEL_NAME}\n"
BANNED = re.compile(r"\b(sorry|sorryAx|admit|axiom|unsafe|implemented_by|extern|skipKernelTC)\b|#exit\b")
# Lean >= 4.2x tags some messages with their kind: `error(lean.unknownIdentifier): ...`.
MESSAGE = re.compile(
    r"^(?P<file>[^\s:][^:\n]*):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning|info)(?:\([\w.]+\))?: ?(?P<msg>.*)$"
)
TIMEOUT_MESSAGES = ("deterministic timeout", "maximum recursion depth", "heartbeats")
MESSAGE_CHARS = 1000


def strip_comments(text: str) -> str:
    """Lean text without `--` and (nested) `/- -/` comments; string literals are kept as they are."""
    out, i, depth, in_string = [], 0, 0, False
    while i < len(text):
        two = text[i : i + 2]
        if depth:
            depth += 1 if two == "/-" else -1 if two == "-/" else 0
            i += 2 if two in ("/-", "-/") else 1
        elif in_string:
            out.append(text[i])
            if text[i] == "\\":
                out.append(text[i + 1 : i + 2])
                i += 1
            elif text[i] == '"':
                in_string = False
            i += 1
        elif two == "/-":
            depth, i = 1, i + 2
        elif two == "--":
            j = text.find("\n", i)
            i = len(text) if j < 0 else j
        else:
            in_string = text[i] == '"'
            out.append(text[i])
            i += 1
    return "".join(out)


def refuse_escape_hatches(text: str) -> Verdict | None:
    """The verdict for an empty proof or one using `sorry`/`admit`/an axiom/..., else None."""
    if not text.strip():
        return Verdict("error", False, {"reason": "empty proof"})
    banned = BANNED.search(strip_comments(text))
    if banned is None:
        return None
    word = banned.group(0)
    status = "sorry" if word in ("sorry", "sorryAx", "admit") else "error"
    return Verdict(status, False, {"reason": f"proof uses `{word}`"})


def _statement(reference: str) -> str:
    """A theorem statement with any placeholder proof (`:= by sorry`) removed, whitespace squashed."""
    stmt = re.sub(r":=\s*(by\s*)?sorry\s*$", "", strip_comments(reference).strip())
    return " ".join(stmt.split())


def proof_steps(text: str) -> list[tuple[int, str]]:
    """(1-based line, text) of the tactic lines of the first `by` block in `text`."""
    lines = text.splitlines()
    for n, line in enumerate(lines, start=1):
        m = re.search(r":=\s*by\b(.*)$", line)
        if m:
            steps = [(n, m.group(1).strip())] if m.group(1).strip() else []
            steps += [
                (k, ln.strip())
                for k, ln in enumerate(lines[n:], start=n + 1)
                if ln.strip() and not ln.strip().startswith("--")
            ]
            return steps
    return []


@dataclass(frozen=True)
class LeanCommand:
    """How to run Lean on one file: argv prefix, extra environment, and where the file must live."""

    argv: list[str]
    env: dict[str, str]
    cwd: str | None = None
    file_dir: str | None = None  # the wasm Lean only sees /tmp and /home


def default_lean_home() -> Path:
    return Path(os.environ.get("RSYNTH_LEAN_HOME") or Path(__file__).resolve().parents[2] / ".lean")


def wasm_installed(home: Path | None = None) -> bool:
    return ((home or default_lean_home()) / ".installed").exists()


def _stage_wasm(home: Path) -> Path:
    """The wasm Lean's files under /tmp (it can only open /tmp and /home), hard-linked when possible."""
    home = home.resolve()
    if str(home).startswith(("/tmp/", "/home/")):
        return home / "lean"
    key = hashlib.sha1(f"{home}:{(home / '.installed').stat().st_mtime_ns}".encode()).hexdigest()[:12]
    staged = Path(tempfile.gettempdir()) / f"rsynth-lean-{os.getuid()}-{key}"
    if not (staged / ".staged").exists():
        tmp = Path(tempfile.mkdtemp(prefix=f"{staged.name}.", dir=staged.parent))

        def link(src: str, dst: str) -> None:
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)

        shutil.copytree(home / "lean", tmp / "lean", copy_function=link)
        (tmp / ".staged").touch()
        try:
            tmp.rename(staged)
        except OSError:  # another process staged it first
            shutil.rmtree(tmp, ignore_errors=True)
    return staged / "lean"


def resolve_command(command: str | None = None, cwd: str | None = None) -> LeanCommand:
    """`command` is "wasm", a shell-style command such as "lean" or "lake env lean", or None (auto:
    `lean` on PATH, else the wasm Lean installed by `make lean`)."""
    if command is None:
        command = "lean" if shutil.which("lean") else "wasm"
    if command != "wasm":
        argv = shlex.split(command)
        if not argv or not shutil.which(argv[0]):
            raise FileNotFoundError(f"Lean command not found: {command!r}")
        return LeanCommand(argv, {}, cwd=cwd)
    home = default_lean_home()
    if not wasm_installed(home):
        raise FileNotFoundError(f"wasm Lean is not installed in {home}: run `make lean` (or set RSYNTH_LEAN_HOME)")
    lean = _stage_wasm(home)
    node = str(home.resolve() / "node26" / "bin" / "node")
    return LeanCommand(
        [node, str(lean / "package" / "lean.js")], {"LEAN_PATH": str(lean / "lib")}, file_dir=tempfile.gettempdir()
    )


@dataclass
class _Placed:
    index: int
    first: int  # first line of the item's own text in the batch file (1-based)
    last: int


class LeanVerifier(Verifier):
    """Checks `candidate` (theorem + proof); `reference`, if given, is the statement it must prove."""

    name = "lean"
    version = "1"

    def __init__(
        self,
        command: str | None = None,
        timeout: float = 900.0,
        header: str = "",
        max_heartbeats: int = 200000,
        cwd: str | None = None,
    ) -> None:
        self.command = resolve_command(command, cwd)
        self.timeout = timeout
        self.header = header
        self.max_heartbeats = max_heartbeats

    def _precheck(self, item: VerifyItem) -> Verdict | None:
        text = item.candidate or ""
        refused = refuse_escape_hatches(text)
        if refused is not None:
            return refused
        code = strip_comments(text)
        if "/-" in text and text.count("/-") != text.count("-/"):
            return Verdict("error", False, {"reason": "unterminated block comment"})
        if re.search(r"^\s*import\b", code, flags=re.M):
            return Verdict("error", False, {"reason": "imports go in the verifier's header, not in a proof"})
        if item.reference and not " ".join(code.split()).startswith(_statement(item.reference)):
            return Verdict("error", False, {"reason": "proof does not state the reference theorem"})
        return None

    def _build(self, items: Sequence[VerifyItem], todo: list[int]) -> tuple[str, list[_Placed]]:
        lines = [self.header.rstrip("\n")] if self.header.strip() else []
        lines.append(f"set_option maxHeartbeats {self.max_heartbeats}")
        placed = []
        for i in todo:
            lines.append(f"namespace RsynthItem{i}")
            body = (items[i].candidate or "").rstrip("\n").split("\n")
            placed.append(_Placed(i, len(lines) + 1, len(lines) + len(body) + 1))  # + the `end`
            lines.extend(body)
            lines.append(f"end RsynthItem{i}")
        lines.append(SENTINEL)
        return "\n".join(lines) + "\n", placed

    def _run(self, source: str) -> tuple[str, int | None]:
        workdir = tempfile.mkdtemp(prefix="rsynth-lean-run-", dir=self.command.file_dir)
        try:
            path = Path(workdir) / "Batch.lean"
            path.write_text(source, encoding="utf-8")
            proc = subprocess.Popen(
                [*self.command.argv, str(path)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=self.command.cwd or workdir,
                env={**os.environ, **self.command.env},
                start_new_session=True,
                text=True,
                errors="replace",
            )
            try:
                out, _ = proc.communicate(timeout=self.timeout)
                return out, proc.returncode
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                return "", None
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    @staticmethod
    def parse_messages(output: str) -> list[dict[str, Any]]:
        """Lean's `file:line:col: severity: message` blocks (continuation lines folded in)."""
        messages: list[dict[str, Any]] = []
        for line in output.splitlines():
            m = MESSAGE.match(line)
            if m and m.group("file").endswith(".lean"):
                messages.append(
                    {
                        "line": int(m.group("line")),
                        "col": int(m.group("col")),
                        "severity": m.group("sev"),
                        "message": m.group("msg"),
                    }
                )
            elif messages and not line.startswith("[DEBUG"):
                messages[-1]["message"] += "\n" + line
        for msg in messages:
            msg["message"] = msg["message"].strip()[:MESSAGE_CHARS]
        return messages

    def _judge(self, item: VerifyItem, place: _Placed, messages: list[dict[str, Any]], finished: bool) -> Verdict:
        mine = [m for m in messages if place.first <= m["line"] <= place.last]
        errors = [m for m in mine if m["severity"] == "error"]
        if errors:
            first = errors[0]
            line = first["line"] - place.first + 1
            evidence: dict[str, Any] = {
                "line": line,
                "col": first["col"],
                "message": first["message"],
                "errors": len(errors),
            }
            steps = proof_steps(item.candidate or "")
            before = [k for k, (n, _) in enumerate(steps) if n <= line]
            if before:
                evidence.update(
                    tactic_index=before[-1], failing_tactic=steps[before[-1]][1], steps=[s for _, s in steps]
                )
            status = "timeout" if any(t in first["message"] for t in TIMEOUT_MESSAGES) else "error"
            return Verdict(status, False, evidence)
        if any("declaration uses" in m["message"] and "sorry" in m["message"] for m in mine):
            return Verdict("sorry", False, {"message": "declaration uses sorry"})
        if not finished:
            return Verdict("error", False, {"reason": "Lean stopped before the end of the batch"})
        return Verdict("proved", True, {"warnings": len(mine)})

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        verdicts: list[Verdict | None] = [self._precheck(it) for it in items]
        todo = [i for i, v in enumerate(verdicts) if v is None]
        if todo:
            source, placed = self._build(items, todo)
            output, rc = self._run(source)
            if rc is None:
                for p in placed:
                    verdicts[p.index] = Verdict(
                        "timeout", False, {"timeout_s": self.timeout, "batch_size": len(placed)}
                    )
            else:
                messages = self.parse_messages(output)
                finished = any(SENTINEL_NAME in m["message"] for m in messages)
                for p in placed:
                    verdict = self._judge(items[p.index], p, messages, finished)
                    if not finished and verdict.status == "error" and "reason" in verdict.evidence:
                        verdict = Verdict(
                            "error", False, {**verdict.evidence, "returncode": rc, "output_tail": output[-1000:]}
                        )
                    verdicts[p.index] = verdict
        return [v for v in verdicts if v is not None]
