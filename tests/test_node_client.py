"""A Node.js client built from protos/ (clients/node) against a live `fero serve`:
adds, retries with the same ticket, reads, and subscribes. CI installs Node.js and
the client's packages; the test is skipped only where there is no `node` at all."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parent.parent / "clients" / "node"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")


@pytest.fixture(scope="module")
def node_modules():
    if not (CLIENT / "node_modules" / "@grpc" / "grpc-js").exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=CLIENT, check=True, timeout=600,
                       capture_output=True)
    return CLIENT


def example(address, *args):
    return subprocess.run(["node", str(CLIENT / "example.js"), address, *args], capture_output=True, text=True, timeout=60)


def test_node_client_adds_retries_reads_and_subscribes(serve, node_modules):
    node = serve()
    first = example(node.address, "js-counter", "5")
    assert first.returncode == 0, first.stderr
    steps = [json.loads(line) for line in first.stdout.splitlines()]
    assert steps[0] == {"step": "add", "value": "5", "coherent": True}
    assert steps[1] == {"step": "retry", "value": "5", "duplicate": True}
    assert steps[2]["value"] == "5" and steps[2]["kind"] == "VALUE_KIND_INT"
    assert steps[3]["step"] == "subscribe" and steps[3]["key"] == "js-counter" and steps[3]["amount"] == "5"

    second = example(node.address, "js-counter", "99999999999999999999")  # beyond 64 bits: exact
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout.splitlines()[0])["value"] == str(99999999999999999999 + 5)

    bad = example(node.address, "js-counter", "five")
    assert bad.returncode == 1
    assert "INVALID_ARGUMENT" in bad.stderr and "'five' is not an int" in bad.stderr
