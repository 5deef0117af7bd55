"""Where a result came from: the code's git commit and the package versions.

Both jobs that write results (data preparation and training) record these.
"""

import importlib.metadata
import os
import platform
import subprocess

_PACKAGES = ("keras", "tensorflow", "jax", "jaxlib", "numpy", "opencv-python-headless", "mtcnn",
             "scikit-image", "scikit-learn", "av")


def git_commit():
    """The checkout's commit, with "-dirty" if it has uncommitted changes; None outside git."""
    source_dir = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source_dir, capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=source_dir,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def package_versions():
    """Installed versions of the packages a result depends on (absent ones omitted)."""
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions
