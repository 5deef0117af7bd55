"""The package layout's rules (docs/layout.md), read from the sources: imports, sizes, flags."""

import ast
import os

import pytest

from conftest import REPO_ROOT

PACKAGES = ("data_pipeline", "unet_industrial")
# Modules allowed to import the synthetic corpus: the corpus itself, the demo
# and studies that run on it, and the tool that measures masks against its truth.
CORPUS_USERS = ("data_pipeline/synthetic/", "unet_industrial/experiments/",
                "data_pipeline/tools/mask_quality.py")
MAX_MODULE_LINES = 450


def _modules():
    for package in PACKAGES:
        for folder, _, names in os.walk(os.path.join(REPO_ROOT, package)):
            for name in sorted(names):
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    yield os.path.relpath(path, REPO_ROOT).replace(os.sep, "/"), path


def _imported(path):
    """Every module a source file imports, as dotted names (`from a import b` gives a and a.b)."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _imports_package(names, package):
    return sorted(name for name in names if name == package or name.startswith(package + "."))


MODULES = dict(_modules())


def test_the_layout_has_both_packages_and_their_subpackages():
    folders = {os.path.dirname(name) for name in MODULES}
    assert {"data_pipeline/synthetic", "data_pipeline/reader", "data_pipeline/runners", "data_pipeline/tools",
            "data_pipeline/layouts", "unet_industrial/models", "unet_industrial/training",
            "unet_industrial/evaluation", "unet_industrial/detection", "unet_industrial/serving",
            "unet_industrial/experiments"} <= folders


@pytest.mark.parametrize("name", sorted(name for name in MODULES if name.startswith("data_pipeline/")))
def test_data_pipeline_never_imports_unet_industrial(name):
    assert _imports_package(_imported(MODULES[name]), "unet_industrial") == []


@pytest.mark.parametrize("name", sorted(name for name in MODULES if not name.startswith(CORPUS_USERS)))
def test_product_code_never_imports_the_synthetic_corpus(name):
    assert _imports_package(_imported(MODULES[name]), "data_pipeline.synthetic") == []


def test_no_module_is_over_the_size_limit():
    sizes = {}
    for name, path in MODULES.items():
        with open(path) as f:
            sizes[name] = sum(1 for _ in f)
    assert {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES} == {}


def test_only_jobs_define_flags_and_the_router_names_every_job():
    from unet_industrial.__main__ import JOBS

    defining = set()
    for name, path in MODULES.items():
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        module_level = [node for node in tree.body if isinstance(node, ast.Expr)]
        if any(isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Attribute)
               and node.value.func.attr.startswith("DEFINE_") for node in module_level):
            defining.add(name)
    jobs = {module.replace(".", "/") + ("/__main__.py" if module == "data_pipeline.synthetic" else ".py")
            for module in JOBS.values()}
    # Jobs the router does not run: the two measurement tools and detect's benchmark.
    others = {"data_pipeline/tools/reader_benchmark.py", "unet_industrial/benchmark_pipeline.py"}
    assert defining <= jobs | others, defining - jobs - others
    assert jobs <= set(MODULES)
