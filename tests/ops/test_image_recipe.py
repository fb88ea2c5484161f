"""scripts/build_image.sh (`make image`) stays consistent with what it builds.

Building the image takes minutes and root, so `make test` does not run it (docs/operations.md,
"Without a registry"); these checks keep its inputs from drifting apart in the meantime.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "build_image.sh"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def test_the_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_the_files_the_build_names_exist() -> None:
    text = SCRIPT.read_text()
    for flag in ("-f", "--ignorefile"):
        match = re.search(rf"{flag} (deploy/\S+)", text)
        assert match, f"no {flag} in {SCRIPT.name}"
        assert (ROOT / match.group(1)).is_file(), match.group(1)


def test_the_base_it_builds_is_the_base_the_dockerfile_takes() -> None:
    """The script builds localhost/python:3-trixie and passes it as PYTHON_IMAGE, which the
    Dockerfile must declare before its first FROM and use in both stages."""
    text = SCRIPT.read_text()
    built = re.search(r"build -t (\S+) -f -", text)
    assert built and f"--build-arg PYTHON_IMAGE={built.group(1)}" in text
    dockerfile = DOCKERFILE.read_text()
    assert dockerfile.index("ARG PYTHON_IMAGE") < dockerfile.index("FROM ")
    assert len(re.findall(r"^FROM \$\{PYTHON_IMAGE\}", dockerfile, re.MULTILINE)) == 2


def test_the_base_has_a_python_the_project_accepts() -> None:
    """debootstrap's suite decides the Python version: trixie ships 3.13 (bookworm's 3.11 is
    older than pyproject's requires-python)."""
    suite = re.search(r"debootstrap --variant=minbase (\w+)", SCRIPT.read_text())
    assert suite and suite.group(1) == "trixie"
    assert 'requires-python = ">=3.12"' in (ROOT / "pyproject.toml").read_text()


def test_the_image_compiles_the_per_frame_modules_as_setup_does() -> None:
    """The image ships what the benchmarks measure: setup.py is in the build context, the
    package is installed again with ``SONICWIRE_COMPILE=1`` (no build isolation: mypyc
    type-checks against the venv's packages), and the build checks the result."""
    ignore = (ROOT / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
    assert "!setup.py" in ignore
    dockerfile = DOCKERFILE.read_text()
    assert re.search(r"^COPY .*\bsetup\.py\b", dockerfile, re.MULTILINE)
    compile_step = re.search(r"SONICWIRE_COMPILE=1 \S+ install --no-build-isolation", dockerfile)
    assert compile_step, "no compiling install in the Dockerfile"
    after = dockerfile[compile_step.end() :]
    assert "native.compiled_modules()" in after and "native.stale_modules()" in after
