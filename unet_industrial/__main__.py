"""`python -m unet_industrial JOB [--flags...]`: runs a job by name (the Docker entry point).

    docker run --gpus all IMAGE train --exec_mode=train_and_evaluate ...
"""

import runpy
import sys

JOBS = {
    "train": "unet_industrial.train",
    "evaluate": "unet_industrial.evaluate",
    "detect": "unet_industrial.detect",
    "demo": "unet_industrial.demo",
    "study": "unet_industrial.study",
}


def main(argv):
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


if __name__ == "__main__":
    sys.exit(main(sys.argv))
