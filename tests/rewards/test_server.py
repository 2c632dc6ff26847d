"""`rsynth serve-reward` over real HTTP on 127.0.0.1, posted to by OpenRLHF 0.8.11's own client
(`openrlhf.utils.remote_rm_utils.request_api_wrapper`, what `remote_rm_fn_ray` calls)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from rsynth.rewards import Batcher, RewardParams, RewardScorer
from rsynth.rewards.server import RewardServer, ServeParams
from tests.paths import REPO

PROMPT = "<|user|>What is 6 * 7?<|end|>\n<|assistant|>"


@pytest.fixture(scope="module")
def server():
    srv = RewardServer(Batcher(RewardScorer(RewardParams(workers=1))), ServeParams(port=0)).start()
    yield srv
    srv.close()


def _post(url, body: bytes):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_openrlhf_client_gets_rewards(server):
    pytest.importorskip("openrlhf", reason="needs openrlhf 0.8.11 (make test: pip install --no-deps openrlhf==0.8.11)")
    from openrlhf.utils.remote_rm_utils import request_api_wrapper

    queries = [
        PROMPT + "6 * 7 = 42, so \\boxed{42}<|end|>",
        PROMPT + "\\boxed{41}<|end|>",
        PROMPT + "maybe \\boxed{41} or \\boxed{42}<|end|>",
    ]
    out = request_api_wrapper(
        server.url + "get_reward", {"query": queries, "prompts": [PROMPT] * 3, "labels": ["42"] * 3}
    )
    assert out["rewards"] == [1.0, 0.0, 0.0] and out["scores"] == out["rewards"]
    assert out["statuses"] == ["correct", "incorrect", "hedged"]


def test_concurrent_requests_share_one_batch_path(server):
    from concurrent.futures import ThreadPoolExecutor

    def one(n):
        body = json.dumps({"query": [f"\\boxed{{{n}}}"], "prompts": [""], "labels": [str(n)]}).encode()
        return _post(server.url, body)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(16)))
    assert all(code == 200 and body["rewards"] == [1.0] for code, body in results)


@pytest.mark.parametrize(
    "body, needle",
    [
        (b"not json", "Expecting value"),
        (b'{"prompts": []}', '"query" list'),
        (b'{"query": ["a", "b"], "labels": ["1"]}', "one entry each"),
    ],
)
def test_a_malformed_request_is_a_400_with_a_reason(server, body, needle):
    code, answer = _post(server.url, body)
    assert code == 400 and needle in answer["error"]


def test_health_answers_the_cache_counts(server):
    with urllib.request.urlopen(server.url + "health", timeout=30) as resp:
        body = json.loads(resp.read())
    assert body["ok"] is True and body["cached verdicts"] >= 1


def test_the_cli_command_serves_until_stopped(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rsynth", "serve-reward", "--port", "0", "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        line = proc.stdout.readline()
        assert "rsynth reward server on http://127.0.0.1:" in line, (
            proc.stderr.read() if proc.poll() is not None else line
        )
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        code, body = _post(url, json.dumps({"query": ["so \\boxed{\\frac{1}{2}}"], "labels": ["0.5"]}).encode())
        assert code == 200 and body["rewards"] == [1.0]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_busy_port_is_a_one_line_error(server):
    port = server.url.rsplit(":", 1)[1].strip("/")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run(
        [sys.executable, "-m", "rsynth", "serve-reward", "--port", port],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert (
        res.returncode == 2 and "cannot listen on 127.0.0.1" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    )
