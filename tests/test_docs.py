"""The README and docs/: a short user's guide, links that resolve, flag tables that match the code."""

import glob
import os
import re
import xml.etree.ElementTree as ET

import pytest

from conftest import REPO_ROOT, run_module

README = os.path.join(REPO_ROOT, "README.md")
DOCS = sorted([README, *glob.glob(os.path.join(REPO_ROOT, "docs", "*.md"))])
README_MAX_BYTES = 16_000
# What a newcomer must find within the README's first screenfuls.
FIRST_LINES = 120
FIRST_THINGS = ("make demo", "make test", "unet_industrial.detect --video=", "data_pipeline.prepare")

FENCED_CODE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HTML_SOURCE = re.compile(r"<(?:img|a)\s[^>]*?(?:src|href)=\"([^\"]+)\"")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$", re.MULTILINE)
# A flag table names the job whose flags it lists in its first header cell: | `train` flag | default | ...
FLAG_TABLE_HEADER = re.compile(r"^\|\s*`(\w+)` flag\s*\|\s*default\s*\|", re.MULTILINE)


def _relative(path):
    return os.path.relpath(path, REPO_ROOT)


def _prose(text):
    """The text without fenced and inline code, where brackets are not links."""
    return INLINE_CODE.sub("", FENCED_CODE.sub("", text))


def _anchor(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = INLINE_CODE.sub(lambda match: match.group(0).strip("`"), heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path):
    with open(path) as f:
        return {_anchor(heading) for heading in HEADING.findall(FENCED_CODE.sub("", f.read()))}


def _links(path):
    with open(path) as f:
        prose = _prose(f.read())
    return MARKDOWN_LINK.findall(prose) + HTML_SOURCE.findall(prose)


def test_the_readme_is_a_short_guide():
    assert os.path.getsize(README) <= README_MAX_BYTES
    with open(README) as f:
        first = "".join(f.readlines()[:FIRST_LINES])
    for thing in FIRST_THINGS:
        assert thing in first, f"{thing!r} is not in the README's first {FIRST_LINES} lines"


@pytest.mark.parametrize("path", DOCS, ids=_relative)
def test_every_relative_link_resolves(path):
    broken = []
    for target in _links(path):
        if re.match(r"^[a-z]+:", target):  # http(s), mailto: not checked offline
            continue
        file_part, _, anchor = target.partition("#")
        linked = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
        if not os.path.exists(linked):
            broken.append(f"{target}: no file {_relative(linked)}")
        elif anchor and linked.endswith(".md") and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {_relative(linked)}")
    assert not broken, broken


def test_the_link_checker_sees_links_and_anchors_but_not_code(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# The `train` job's flags\n\n[a](other.md#x) ![b](pic.png) <img src=\"c.png\" width=2>\n"
                    "`[not](code.md)`\n```\n[nor](this.md)\n```\n")
    assert _links(str(page)) == ["other.md#x", "pic.png", "c.png"]
    assert _anchors(str(page)) == {"the-train-jobs-flags"}


def _flag_tables():
    """(doc, job, [(flag names, default cell)]) for each flag table in the docs."""
    tables = []
    for path in DOCS:
        with open(path) as f:
            text = f.read()
        for header in FLAG_TABLE_HEADER.finditer(text):
            rows = []
            for line in text[header.end():].splitlines()[2:]:  # past the header's rest and |---|
                if not line.startswith("|"):
                    break
                flag_cell, default_cell = (cell.strip() for cell in line.strip("|").split("|")[:2])
                rows.append((re.findall(r"`--(\w+)`", flag_cell), default_cell))
            tables.append((_relative(path), header.group(1), rows))
    return tables


def _defined_flags(job):
    """{flag name: default as absl writes it} of a job's own flags, from `unet-industrial JOB --helpxml`."""
    result = run_module("unet_industrial", job, "--helpxml", timeout=120)
    root = ET.fromstring(result.stdout)
    return {flag.findtext("name"): flag.findtext("default")
            for flag in root.iter("flag") if flag.findtext("key") == "yes"}


def _same_default(cell_value, defined):
    """A default cell's value (`x`, off, on, or empty for an empty string) against absl's default."""
    value = {"off": "false", "on": "true", "": ""}.get(cell_value, cell_value.strip("`"))
    if value == defined:
        return True
    try:
        return float(value) == float(defined)
    except ValueError:
        return False


def test_the_docs_keep_a_flag_table():
    assert [(doc, job) for doc, job, _ in _flag_tables()] == [(os.path.join("docs", "training.md"), "train")]


@pytest.mark.parametrize("doc, job, rows", _flag_tables(),
                         ids=lambda value: value if isinstance(value, str) else "")
def test_a_flag_table_lists_every_flag_of_its_job_with_its_default(doc, job, rows):
    defined = _defined_flags(job)
    listed = [name for names, _ in rows for name in names]
    assert sorted(listed) == sorted(defined), (doc, set(listed) ^ set(defined))
    wrong = []
    for names, cell in rows:
        values = [value.strip() for value in cell.split(",")]
        values = values * len(names) if len(values) == 1 else values
        assert len(values) == len(names), (doc, names, cell)
        wrong += [f"--{name}: {value!r} against {defined[name]!r}"
                  for name, value in zip(names, values) if not _same_default(value, defined[name])]
    assert not wrong, (doc, wrong)
