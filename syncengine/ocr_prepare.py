"""Turning an uploaded document into page images an OCR engine can read (flow F6).

The type is judged from the bytes, never from a name or a declared content type. PDF pages are rasterised
with pypdfium2, photos are turned upright by their EXIF orientation (phones store them sideways and say so)
and downscaled to what the reader needs: for the OpenAI vision model the size its `detail` level actually
uses (a larger image costs tokens and upload time and is scaled down by the API anyway), for Tesseract the
configured `ocr_max_side`. HEIC (iPhone photos) is read when the optional `pillow-heif` is installed.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

from PIL import Image as PILImage
from PIL import ImageOps

MAX_PAGES = 10  # a receipt or supplier invoice; more pages is a mistaken upload, read the first ten
PDF_DPI = 200  # enough for 8-pt print; the longest side is capped afterwards
# OpenAI's vision input: "high" fits the image in 2048 x 2048, then its shortest side to 768; "low" 512 x 512.
MODEL_SIDES = {"high": (2048, 768), "auto": (2048, 768), "low": (512, 512)}
PIXEL_LIMIT = 80_000_000  # beyond this a "photo" is a decompression bomb
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
ORIENTATION = 0x0112  # the EXIF tag; 1 is upright
PASSTHROUGH = ("image/jpeg", "image/png", "image/webp")  # types the model accepts as they are


class Unreadable(ValueError):
    """The bytes are not a document we can turn into pages; the message says why, for a human."""


@dataclass(frozen=True)
class Page:
    """One page as encoded bytes, ready to send as an `image_url` data URL."""

    data: bytes
    content_type: str = "image/jpeg"

    def data_url(self) -> str:
        return f"data:{self.content_type};base64,{base64.b64encode(self.data).decode()}"

    def part(self, detail: str) -> dict[str, Any]:
        return {"type": "image_url", "image_url": {"url": self.data_url(), "detail": detail}}


def sniff(data: bytes) -> str | None:
    """The content type the bytes themselves show, or None when they are not a type we read."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        return "image/heic"
    if data[:1024].lstrip(b"\x00\t\n\r ").startswith(b"%PDF-"):
        return "application/pdf"
    return None


def heic_supported() -> bool:
    """pillow-heif is an optional extra; when present it registers HEIC with Pillow."""
    try:
        from pillow_heif import register_heif_opener  # type: ignore[import-not-found]
    except ImportError:
        return False
    register_heif_opener()
    return True


def accepted(content_type: str | None) -> bool:
    return content_type in (*PASSTHROUGH, "application/pdf") or (
        content_type == "image/heic" and heic_supported()
    )


def images(data: bytes, max_side: int) -> list[PILImage.Image]:
    """The document's pages as upright RGB images no larger than `max_side`; raises Unreadable."""
    kind = sniff(data)
    if kind == "application/pdf":
        return [_fit(page, max_side) for page in _pdf_pages(data)]
    if kind is None or not accepted(kind):
        raise Unreadable(f"cannot read {kind or 'this file type'}")
    return [_fit(_open(data), max_side)]


def for_model(data: bytes, detail: str, max_side: int) -> list[Page]:
    """Pages for the vision model. An image that is already upright and small enough is sent as it came,
    byte for byte; anything changed is re-encoded (JPEG for photos, PNG for rendered PDF pages)."""
    kind = sniff(data)
    longest, shortest = MODEL_SIDES.get(detail, MODEL_SIDES["high"])
    longest = min(longest, max_side)
    if kind == "application/pdf":
        return [_encode(_fit(page, longest, shortest), "PNG") for page in _pdf_pages(data)]
    if kind is None or not accepted(kind):
        raise Unreadable(f"cannot read {kind or 'this file type'}")
    original = _open(data, transpose=False)
    upright = _upright(original)
    fitted = _fit(upright, longest, shortest)
    if kind in PASSTHROUGH and fitted is original:
        return [Page(data, kind)]
    return [_encode(fitted, "PNG" if kind == "image/png" else "JPEG")]


def _open(data: bytes, transpose: bool = True) -> PILImage.Image:
    heic_supported()
    try:
        image = PILImage.open(io.BytesIO(data))
        if image.width * image.height > PIXEL_LIMIT:
            raise Unreadable(f"image of {image.width} x {image.height} pixels is too large")
        image.load()
    except Unreadable:
        raise
    except (OSError, ValueError, PILImage.DecompressionBombError) as exc:
        raise Unreadable(f"the image could not be decoded: {type(exc).__name__}") from None
    return _upright(image) if transpose else image


def _upright(image: PILImage.Image) -> PILImage.Image:
    """Apply the EXIF orientation; the same object back when there is none (so nothing is re-encoded)."""
    if image.getexif().get(ORIENTATION, 1) == 1:
        return image
    return ImageOps.exif_transpose(image)


def _pdf_pages(data: bytes) -> list[PILImage.Image]:
    try:
        import pypdfium2
    except ImportError:
        raise Unreadable("PDF needs pypdfium2") from None
    try:
        pdf = pypdfium2.PdfDocument(data)
        try:
            pages = [
                pdf[index].render(scale=PDF_DPI / 72).to_pil().convert("RGB")
                for index in range(min(len(pdf), MAX_PAGES))
            ]
        finally:
            pdf.close()
    except pypdfium2.PdfiumError as exc:
        raise Unreadable(f"the PDF could not be rendered: {exc}") from None
    if not pages:
        raise Unreadable("the PDF has no pages")
    return pages


def _fit(image: PILImage.Image, longest: int, shortest: int | None = None) -> PILImage.Image:
    """Downscale (never up) so the longest side is ≤ `longest` and the shortest ≤ `shortest`."""
    width, height = image.size
    scale = min(1.0, longest / max(width, height))
    if shortest:
        scale = min(scale, shortest / min(width, height))
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    if scale >= 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, PILImage.Resampling.LANCZOS)


def _encode(image: PILImage.Image, fmt: str) -> Page:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(buffer, format="JPEG", quality=88, optimize=True)
        return Page(buffer.getvalue(), "image/jpeg")
    image.save(buffer, format="PNG", optimize=True)
    return Page(buffer.getvalue(), "image/png")
