"""The command line against a real `fero serve` process."""

import json
import subprocess
import sys

import pytest


def fero(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "fero.cli.main", *args], capture_output=True, text=True, timeout=timeout)


def fero_ls(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "fero.cli.ls", *args], capture_output=True, text=True, timeout=timeout)


def test_add_get_and_ls(serve):
    node = serve()
    a = fero("add", "visits", "5", "--address", node.address)
    assert a.returncode == 0, a.stderr
    assert json.loads(a.stdout)["value"] == "5"
    assert json.loads(fero("add", "visits", "7", "--address", node.address).stdout)["value"] == "12"
    g = json.loads(fero("get", "visits", "--address", node.address).stdout)
    assert g["value"] == "12" and g["kind"] == "int" and g["exists"] is True

    table = fero_ls("--address", node.address)
    assert table.returncode == 0, table.stderr
    header, rule, row = table.stdout.splitlines()[:3]
    assert header.split()[:4] == ["id", "address", "state", "partitions"]
    assert row.split()[:4] == [node.node_id, node.address, "serving", "256"]

    as_json = json.loads(fero_ls("--address", node.address, "--json", "--partitions").stdout)
    assert as_json["node"]["id"] == node.node_id
    assert as_json["node"]["counters"] == "1"  # uint64 travels as a string in proto JSON
    assert as_json["coherent"] is True
    parts = as_json["partition_status"]
    assert len(parts) == 256
    assert sum(int(p["next_offset"]) for p in parts) == 2


def test_decimal_setup_and_bad_amount_messages(serve):
    node = serve()
    assert fero("setup", "inv", "--kind", "decimal", "--address", node.address).returncode == 0
    assert json.loads(fero("add", "inv", "12.50", "--address", node.address).stdout)["value"] == "12.50"
    bad = fero("add", "inv", "twelve", "--address", node.address)
    assert bad.returncode == 1
    assert "INVALID_ARGUMENT" in bad.stderr and "'twelve' is not a decimal" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_ls_with_no_node_says_so_in_one_line(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = fero_ls("--address", f"127.0.0.1:{port}")
    assert r.returncode == 1
    assert r.stderr.startswith("fero-ls: no node answered at") and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--constants.dht.vnodes", "0"], "invalid config dht.vnodes = 0"),
        (["--constants.storage.nope", "1"], "unknown config field 'storage.nope'"),
        (["--constants.storage.fsync_interval_ms", "soon"], "invalid config storage.fsync_interval_ms = 'soon'"),
    ],
)
def test_serve_refuses_bad_constants_naming_the_field(tmp_path, args, message):
    r = fero("serve", "--port", "0", "--data-dir", str(tmp_path), *args)
    assert r.returncode != 0
    assert message in r.stderr


def test_serve_refuses_a_data_dir_in_use(serve, tmp_path):
    node = serve(tmp_path / "d")
    r = fero("serve", "--port", "0", "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 1
    assert "in use by another fero process" in r.stderr
    assert fero("get", "x", "--address", node.address).returncode == 0
