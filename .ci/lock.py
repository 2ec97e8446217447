"""requirements.lock: every dependency syncengine deploys, pinned, with the hashes of its files.

    python .ci/lock.py           make it again from pyproject.toml (needs pip-tools: pip install pip-tools);
                                 pins already in the lock are kept unless pyproject.toml no longer allows them
    python .ci/lock.py --check   CI: the lock was made from pyproject.toml's dependencies as they are now,
                                 pins each of them at a version they allow, and has hashes for every pin

The lock records a digest of pyproject.toml's [project] dependencies, so a dependency added, removed or
given another version range without locking again fails the check, whatever the index holds that day.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
DIGEST_LINE = re.compile(r"^# dependencies-sha256: ([0-9a-f]{64})$", re.MULTILINE)
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)
HEADER = """\
# Every dependency syncengine deploys, pinned with the hashes of its files:
#     pip install --require-hashes -r requirements.lock
# Made by `python .ci/lock.py` (pip-compile --generate-hashes) from pyproject.toml's [project] dependencies;
# CI checks it still matches them (`python .ci/lock.py --check`). Do not edit by hand.
# dependencies-sha256: {digest}
"""


def dependencies() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(line) for line in project["dependencies"]]


def digest(requirements: list[Requirement]) -> str:
    """Of the requirements as pip reads them: comments and spacing in pyproject.toml do not count."""
    return hashlib.sha256("\n".join(sorted(str(r) for r in requirements)).encode()).hexdigest()


def problems(lock_text: str, requirements: list[Requirement]) -> list[str]:
    """What makes the lock not match the requirements (empty when it does)."""
    found = DIGEST_LINE.search(lock_text)
    if found is None:
        return ["requirements.lock has no dependencies-sha256 line: make it with `python .ci/lock.py`"]
    out = []
    if found.group(1) != digest(requirements):
        out.append("pyproject.toml's dependencies changed since requirements.lock was made")
    pins = {canonicalize_name(name): version for name, version in PIN.findall(lock_text)}
    for requirement in requirements:
        version = pins.get(canonicalize_name(requirement.name))
        if version is None:
            out.append(f"{requirement.name} is not pinned in requirements.lock")
        elif not requirement.specifier.contains(version, prereleases=True):
            out.append(f"{requirement.name}=={version} is outside pyproject.toml's {requirement.specifier}")
    for block in re.split(r"\n(?=[A-Za-z0-9])", lock_text.split("\n\n", 1)[-1]):
        if PIN.match(block) and "--hash=sha256:" not in block:
            out.append(f"{PIN.match(block).group(1)} has no hash")  # type: ignore[union-attr]
    return out


def make() -> int:
    """pip-compile into a copy of the lock (so it keeps the pins it can), then the header on top."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder) / "requirements.lock"
        if LOCK.exists():
            shutil.copy(LOCK, work)
        compiled = subprocess.run(
            [sys.executable, "-m", "piptools", "compile", "--quiet", "--generate-hashes", "--strip-extras",
             "--no-header", "--no-emit-index-url", "--no-emit-find-links", "--output-file", str(work),
             "pyproject.toml"],
            cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if compiled.returncode != 0:
            print(compiled.stderr.strip() or "pip-compile failed (pip install pip-tools)", file=sys.stderr)
            return 1
        body = work.read_text().lstrip("\n")
    LOCK.write_text(HEADER.format(digest=digest(dependencies())) + "\n" + body)
    print(f"wrote {LOCK.name}: {len(PIN.findall(body))} pinned packages")
    return 0


def check() -> int:
    found = problems(LOCK.read_text() if LOCK.exists() else "", dependencies())
    for problem in found:
        print(f"requirements.lock: {problem}; run `python .ci/lock.py` (needs pip-tools)", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(check() if "--check" in sys.argv[1:] else make())
