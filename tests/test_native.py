"""The per-frame modules compiled with mypyc (sonicwire.server.native, setup.py): the build
knows when it is stale, and the compiled code answers exactly as the pure Python does."""

from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sonicwire.server import native
from tests.pure_python import ROOT, pure_python_env


def test_every_listed_module_has_its_source_and_is_in_the_package() -> None:
    for module, path in zip(native.COMPILED, native.COMPILED_PATHS, strict=True):
        assert (ROOT / path).is_file(), module
        assert Path(path).with_suffix("").parts[1:] == tuple(module.split("."))


def test_a_source_changed_after_the_build_is_stale(tmp_path: Path) -> None:
    manifest = tmp_path / "native_manifest.json"
    modules = list(native.COMPILED[:3])
    assert native.stale_modules(modules, manifest) == modules  # no record: all of them
    native.write_manifest(manifest)
    assert native.stale_modules(modules, manifest) == []
    recorded = json.loads(manifest.read_text())
    recorded[modules[1]] = "0" * 64  # built from another version of that source
    manifest.write_text(json.dumps(recorded))
    assert native.stale_modules(modules, manifest) == [modules[1]]
    assert native.stale_modules([], manifest) == []  # pure Python is never stale


def _digest(env: dict[str, str]) -> tuple[str, str]:
    """(native.describe(), the in-process conversations' response digest) in a child."""
    code = (
        "import hashlib, sys\n"
        "from bench.inprocess import measure\n"
        "from sonicwire.server import native\n"
        "digest = hashlib.sha256()\n"
        "measure(8.0, 3, 1, digest)\n"
        "print(native.describe()); print(digest.hexdigest())\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    assert run.returncode == 0, run.stderr[-2000:]
    describe, digest = run.stdout.strip().splitlines()[-2:]
    return describe, digest


def test_the_compiled_modules_answer_as_the_pure_python_does(tmp_path: Path) -> None:
    # every response of three in-process conversations (front end, core, conversion; the
    # clock simulated), hashed: once on the build, once on a copy of the same sources
    # without the compiled extensions
    if not native.compiled_modules():
        pytest.skip("pure Python install (SONICWIRE_COMPILE=0): nothing compiled to compare")
    compiled_describe, compiled_digest = _digest(dict(os.environ))
    pure_describe, pure_digest = _digest(pure_python_env(tmp_path))
    assert compiled_describe.startswith("compiled with mypyc")
    assert "STALE" not in compiled_describe
    assert pure_describe.startswith("pure Python")
    assert compiled_digest == pure_digest


_FAKE_MYPYC = {
    # mypyc itself refuses a source (a type error, a construct it does not compile)
    "mypyc": "def mypycify(paths, opt_level='3'):\n    raise SystemExit('error: mypyc refused')\n",
    # mypyc's C is generated, the C compiler fails on it
    "gcc": (
        "from setuptools import Extension\n"
        "def mypycify(paths, opt_level='3'):\n"
        "    return [Extension('broken_native', sources=['broken_native.c'])]\n"
    ),
}


@pytest.mark.parametrize("stage", sorted(_FAKE_MYPYC))
def test_a_failed_build_leaves_the_older_extensions_stale(tmp_path: Path, stage: str) -> None:
    # setup.py in a scratch tree whose compiled sources changed since the last build (the
    # manifest records other digests), with a stand-in mypyc that fails at ``stage``: the
    # older extensions stay, and must not pass for today's sources afterwards
    tree = tmp_path / "tree"
    shutil.copytree(
        ROOT / "server", tree / "server", ignore=shutil.ignore_patterns("*.so", "__pycache__")
    )
    shutil.copy(ROOT / "setup.py", tree)
    (tree / "pyproject.toml").write_text(
        '[project]\nname = "scratch"\nversion = "0"\n[tool.setuptools]\npackages = []\n'
    )
    (tree / "broken_native.c").write_text('#error "the C compiler fails"\n')
    fake = tmp_path / "fake" / "mypyc"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "build.py").write_text(_FAKE_MYPYC[stage])
    manifest = tree / "server" / "sonicwire" / "server" / "native_manifest.json"
    manifest.write_text(json.dumps(dict.fromkeys(native.COMPILED, "0" * 64)))  # an older build
    env = dict(os.environ, SONICWIRE_COMPILE="1", PYTHONPATH=str(fake.parent))
    run = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode != 0, run.stdout[-2000:]
    assert (
        "mypyc refused" if stage == "mypyc" else "the C compiler fails"
    ) in run.stderr + run.stdout
    modules = list(native.COMPILED)
    assert native.stale_modules(modules, manifest) == modules


def test_removing_a_build_takes_its_extensions_library_and_manifest_only(tmp_path: Path) -> None:
    # scripts/setup.sh with SONICWIRE_COMPILE=0 after a compiled build: the extensions would
    # still win the imports, so they go; every source and anything else stays
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    package = tmp_path / "server" / "sonicwire" / "server"
    built = [package / "dsp" / f"vad{suffix}", package / "core" / f"session{suffix}"]
    built += [package / f"convert{suffix}", tmp_path / f"0123abcd__mypyc{suffix}"]
    kept = [package / "dsp" / "vad.py", package / "dsp" / "speex.py", package / "app.py"]
    kept += [package / "dsp" / f"not_compiled{suffix}", tmp_path / "setup.py"]
    for path in [*built, *kept]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    native.write_manifest(package / "native_manifest.json")
    removed = native.remove_build(package)
    assert sorted(removed) == sorted([*built, package / "native_manifest.json"])
    assert not any(path.exists() for path in removed)
    assert all(path.exists() for path in kept)
    assert native.remove_build(package) == []  # nothing left to remove
