"""The offline OCR engine: Tesseract through pytesseract; its plain text is read into fields by
connectors.receipt_text.

Used when OpenAI is not configured or its breaker is open (tasks/ocr.py `choose_engine`), and by
`syncengine ocr --engine tesseract`. It reads what is printed and nothing more: a field it cannot find
is null, and where several printed amounts could be the totals it keeps the reading whose net + VAT =
total, never a computed value. Its results go to review unless every validation check passes.
Needs the optional extra `ocr` (pytesseract) and the `tesseract` binary (Debian: `tesseract-ocr`).
"""

from __future__ import annotations

import shutil
from functools import cache

from PIL import Image, ImageFilter, ImageOps

from connectors.openai_ocr import Extraction
from connectors.receipt_text import adds_up, parse, total
from syncengine.errors import Permanent
from syncengine.ocr.prepare import images
from syncengine.settings import get_settings

MIN_WIDTH = 1000  # narrower pages are upscaled: Tesseract reads ~10-pixel x-heights poorly
# Page segmentation: a single column of variable-size text first (receipts, simple invoices), then a uniform
# block, which keeps a right-aligned amount on its label's line where the first splits them into columns.
CONFIGS = ("--psm 4", "--psm 6")
PAGE_TIMEOUT = 60  # seconds per Tesseract run, well inside the OCR task's time limit


class TesseractOcr:
    """Same interface as OpenAIOcr: `extract_document(bytes)` → Extraction (engine "tesseract")."""

    service = "tesseract"

    def __init__(self, max_side: int | None = None) -> None:
        if not available():
            raise Permanent("the offline OCR needs pytesseract and the tesseract binary (tesseract-ocr)")
        self.max_side = max_side or get_settings().ocr_max_side

    def extract_document(self, data: bytes, hint: str | None = None) -> Extraction:
        """Raises ocr.prepare.Unreadable for bytes that are no document, Permanent when Tesseract fails."""
        try:
            text = "\n".join(read_text(page) for page in images(data, self.max_side))
        except RuntimeError as exc:  # pytesseract's timeout, or the binary failing
            raise Permanent(f"tesseract failed: {exc}") from None
        return Extraction("ok", data=parse(text), model=version(), engine="tesseract")


def available() -> bool:
    try:
        import pytesseract
    except ImportError:
        return False
    return shutil.which(pytesseract.pytesseract.tesseract_cmd) is not None


@cache
def version() -> str:
    import pytesseract

    return f"tesseract-{pytesseract.get_tesseract_version()}"


def clean(page: Image.Image) -> Image.Image:
    """Grayscale, speckles removed, contrast stretched, small pages upscaled."""
    gray = page.convert("L")
    if gray.width < MIN_WIDTH:
        factor = MIN_WIDTH / gray.width
        gray = gray.resize((MIN_WIDTH, round(gray.height * factor)), Image.Resampling.LANCZOS)
    return ImageOps.autocontrast(gray.filter(ImageFilter.MedianFilter(3)), cutoff=1)


def read_text(page: Image.Image) -> str:
    """The page's text under the first segmentation whose totals add up (else the one that found a total);
    a page with no total at all may be sideways: Tesseract's orientation detection turns it, once."""
    import pytesseract

    cleaned = clean(page)
    readings = []
    for config in CONFIGS:
        text = pytesseract.image_to_string(cleaned, config=config, timeout=PAGE_TIMEOUT)
        if adds_up(text):
            return text
        readings.append(text)
    with_total = [text for text in readings if total(text) is not None]
    if with_total:
        return with_total[0]
    try:
        osd = pytesseract.image_to_osd(cleaned, config="--psm 0", timeout=PAGE_TIMEOUT)
        rotate = int(osd.split("Rotate:")[1].split()[0])
    except (pytesseract.TesseractError, IndexError, ValueError):
        return readings[0]
    if rotate % 360 == 0:
        return readings[0]
    upright = cleaned.rotate(-rotate, expand=True)  # OSD says how far clockwise; PIL turns anticlockwise
    return pytesseract.image_to_string(upright, config=CONFIGS[0], timeout=PAGE_TIMEOUT)
