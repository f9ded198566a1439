"""fero's gRPC runtime settings: applied before grpc loads, and never over the user's."""

import os
import subprocess
import sys

from fero import grpc_runtime

PROBE = "import fero, os; print(os.environ.get('GRPC_EXPERIMENTS', '-'))"


def run_probe(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in ("GRPC_EXPERIMENTS", "FERO_GRPC_DEFAULTS")}
    environ.update(env)
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()


def test_importing_fero_sets_the_experiments_for_the_process_and_its_children():
    assert run_probe(PROBE) == grpc_runtime.EXPERIMENTS


def test_the_users_own_setting_wins():
    assert run_probe(PROBE, GRPC_EXPERIMENTS="-some_flag") == "-some_flag"


def test_opting_out_leaves_grpc_on_its_defaults():
    assert run_probe(PROBE, FERO_GRPC_DEFAULTS="0") == "-"


def test_grpc_loaded_before_fero_is_left_alone():
    # gRPC has read its settings already: setting them now would only mislead.
    assert run_probe("import grpc; " + PROBE) == "-"


def test_configure_on_an_environment():
    # This test process has grpc loaded: nothing is set, whatever the environment says.
    env: dict[str, str] = {}
    assert grpc_runtime.configure(env) is None and env == {}
    assert grpc_runtime.configure({"GRPC_EXPERIMENTS": "x"}) == "x"
