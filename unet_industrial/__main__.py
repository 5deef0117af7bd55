"""`unet-industrial JOB [--flags...]` (or `python -m unet_industrial JOB`): runs any job by name.

    unet-industrial prepare --layout=ffpp --data_dir=/data/FaceForensics++ --out_dir=data/ffpp-c23
    unet-industrial train --exec_mode=train_and_evaluate ...
    docker run --gpus all IMAGE train --exec_mode=train_and_evaluate ...

The one way in for the console script, `python -m` and the Docker image's
entry point. `unet-industrial JOB --helpshort` lists a job's flags.
"""

import runpy
import sys

# In pipeline order: data, training, verdicts, then the jobs that chain them.
JOBS = {
    "synthetic": "data_pipeline.synthetic",
    "prepare": "data_pipeline.prepare",
    "train": "unet_industrial.train",
    "evaluate": "unet_industrial.evaluate",
    "detect": "unet_industrial.detect",
    "demo": "unet_industrial.demo",
    "study": "unet_industrial.study",
    "serve": "unet_industrial.serve",
    "export": "unet_industrial.export",
    "package_run": "unet_industrial.package_run",
}


def main(argv):
    """Runs the job named by argv[1] with the flags after it.

    Args:
      argv: the command line, program name first.

    Returns:
      The exit status for an unknown or missing job (2); a job's own status
      leaves through the SystemExit it raises.
    """
    if len(argv) < 2 or argv[1] not in JOBS:
        given = f" {argv[1]!r}" if len(argv) > 1 else ""
        print(f"error: unknown job{given}; usage: JOB [--flags...] with JOB one of {', '.join(JOBS)}",
              file=sys.stderr)
        return 2
    module = JOBS[argv[1]]
    # The job sees itself as `python -m <module> --flags...`.
    sys.argv = [module, *argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


def console():
    """The `unet-industrial` console script (pyproject.toml's [project.scripts])."""
    sys.exit(main(sys.argv))


if __name__ == "__main__":
    console()
