"""Documents built to exhaust a reader's memory (tests/hostile_documents.py) are read within a 512 MB dyno's
means: each is prepared the way each OCR engine prepares it, in a process that has imported the whole OCR
worker first (so the baseline is a worker's), and that process's peak RSS stays under 300 MB. Before the
bounds, the two PDFs took 4.2 and 4.6 GB and the PNG up to 674 MB in the worker."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.hostile_documents import image_pdf, issue_17
from tests.support import ROOT

LIMIT_MB = 300

# Peak RSS from /proc (VmHWM, this process's own); getrusage's ru_maxrss would carry over the parent's
# peak across fork and exec.
PROBE = """
import json, sys

def peak_mb():
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
    return int(status["VmHWM"].split()[0]) / 1024

import tasks.ocr  # the OCR worker's modules: Celery, SQLAlchemy, the connectors, the OpenAI SDK, Pillow
import pypdfium2
from syncengine.ocr.prepare import Unreadable, for_model, images

data, engine = open(sys.argv[1], "rb").read(), sys.argv[2]
baseline = peak_mb()
try:
    if engine == "openai":
        pages = [len(page.data) for page in for_model(data, "high", 2048)]
    else:
        pages = [page.size for page in images(data, 2048)]  # one at a time, as Tesseract reads them
    outcome = {"pages": len(pages), "largest": max(pages)}
except Unreadable as exc:
    outcome = {"unreadable": str(exc)}
print(json.dumps({"baseline_mb": round(baseline), "peak_mb": round(peak_mb()), **outcome}))
"""


def large_jpeg() -> bytes:
    """A 35-megapixel JPEG: more pixels than an image may decode to, but a JPEG decodes reduced."""
    buffer = io.BytesIO()
    Image.new("RGB", (7000, 5000), "white").save(buffer, format="JPEG", quality=50)
    return buffer.getvalue()


def documents() -> dict[str, bytes]:
    return {**issue_17(), "a 15000 px picture inside a PDF": image_pdf(15000), "a 35 MP JPEG": large_jpeg()}


def prepare(path: Path, engine: str) -> dict:
    run = subprocess.run([sys.executable, "-c", PROBE, str(path), engine], cwd=ROOT, capture_output=True,
                         text=True, timeout=180, env=dict(os.environ))  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    paths = {}
    for number, (name, data) in enumerate(documents().items()):
        paths[name] = folder / f"document-{number}"
        paths[name].write_bytes(data)
    return paths


@pytest.mark.parametrize("engine", ["openai", "tesseract"])
@pytest.mark.parametrize("name", list(documents()))
def test_a_hostile_document_is_prepared_within_the_memory_of_a_small_dyno(files, name, engine):
    found = prepare(files[name], engine)
    print(f"{name} for {engine}: {found}")
    assert found["peak_mb"] < LIMIT_MB, found
    if name == "8944 x 8944 PNG":
        assert "larger than the 25 megapixels" in found["unreadable"]
    else:  # rendered or decoded straight at the reader's size: small pages, never the claimed size
        assert found["pages"] == (10 if name == "ten pages of 3600 pt" else 1), found
        if engine == "tesseract":
            assert max(found["largest"]) <= 2048
