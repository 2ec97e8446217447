"""Turning an uploaded document into page images an OCR engine can read (flow F6).

The type is judged from the bytes, never from a name or a declared content type. Photos are turned upright
by their EXIF orientation (phones store them sideways and say so) and downscaled to what the reader needs:
for the OpenAI vision model the size its `detail` level actually uses (a larger image costs tokens and
upload time and is scaled down by the API anyway), for Tesseract the configured `ocr_max_side`. HEIC
(iPhone photos) is read when the optional `pillow-heif` is installed.

Memory is bounded by design, whatever the file claims (a 400-byte PDF can describe a 5-metre page; a
200 KB PNG can hold 80 megapixels): each PDF page's size is read first and the page rendered straight at
the size the reader needs, never larger than PAGE_PIXEL_LIMIT, one page at a time and at most MAX_PAGES;
a JPEG is decoded at the smallest of its built-in reductions (1/2 to 1/8) that still covers that size; any
image that would still decode to more than IMAGE_PIXEL_LIMIT pixels is refused from its header, before a
byte of it is decoded. So one reading stays well inside a 512 MB dyno.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from PIL import Image as PILImage

MAX_PAGES = 10  # a receipt or supplier invoice; more pages is a mistaken upload, read the first ten
PDF_DPI = 200  # enough for 8-pt print; rendering is smaller still when the reader needs less
PAGE_PIXEL_LIMIT = 16_000_000  # a rendered PDF page: 4000 x 4000, 48 MB as RGB
# An image decoded (after a JPEG's reduction): 25 megapixels is 75 MB as RGB (100 MB with alpha); covers a
# 24-megapixel phone photo in any format, and any JPEG up to 1.6 gigapixels.
IMAGE_PIXEL_LIMIT = 25_000_000
# OpenAI's vision input: "high" fits the image in 2048 x 2048, then its shortest side to 768; "low" 512 x 512.
MODEL_SIDES = {"high": (2048, 768), "auto": (2048, 768), "low": (512, 512)}
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
ORIENTATION = 0x0112  # the EXIF tag; 1 is upright
# How to turn a picture stored with each EXIF orientation upright (as PIL.ImageOps.exif_transpose does).
UPRIGHT = {
    2: PILImage.Transpose.FLIP_LEFT_RIGHT, 3: PILImage.Transpose.ROTATE_180,
    4: PILImage.Transpose.FLIP_TOP_BOTTOM, 5: PILImage.Transpose.TRANSPOSE,
    6: PILImage.Transpose.ROTATE_270, 7: PILImage.Transpose.TRANSVERSE, 8: PILImage.Transpose.ROTATE_90,
}  # fmt: skip
PASSTHROUGH = ("image/jpeg", "image/png", "image/webp")  # types the model accepts as they are
# The only Pillow decoders an upload may reach (the bytes were sniffed first): none of the others' flaws
# (PSD, FITS, …) are within a stranger's reach.
DECODERS = ("JPEG", "PNG", "WEBP", "HEIF")


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


@dataclass(frozen=True)
class Target:
    """The size a reader needs: the longest side at most `longest`, the shortest at most `shortest`."""

    longest: int
    shortest: int | None = None

    def scale(self, width: float, height: float) -> float:
        """The factor (at most 1) that brings a width x height picture within the target."""
        scale = min(1.0, self.longest / max(width, height))
        return min(scale, self.shortest / min(width, height)) if self.shortest else scale


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


def check_size(data: bytes, max_side: int) -> None:
    """Raise Unreadable for an image that would decode to more than IMAGE_PIXEL_LIMIT pixels even at the
    reader's size, judged from its header alone, so the receiver can refuse the upload at once. Anything
    else passes: whether it reads is the reader's verdict, given with the document in review."""
    kind = sniff(data)
    if kind is None or kind == "application/pdf" or not accepted(kind):
        return
    try:
        image = _header(data)
    except Unreadable:
        return
    _reduce(image, Target(max_side))


def images(data: bytes, max_side: int) -> Iterator[PILImage.Image]:
    """The document's pages as upright RGB images no larger than `max_side`, one at a time; raises
    Unreadable."""
    target = Target(max_side)
    kind = _kind(data)
    if kind == "application/pdf":
        yield from _pdf_pages(data, target)
        return
    image, orientation, _reduced = _decode(data, target)
    yield _upright(_fit(image, target), orientation)


def for_model(data: bytes, detail: str, max_side: int) -> list[Page]:
    """Pages for the vision model. An image that is already upright and small enough is sent as it came,
    byte for byte; anything changed is re-encoded (JPEG for photos, PNG for rendered PDF pages)."""
    longest, shortest = MODEL_SIDES.get(detail, MODEL_SIDES["high"])
    target = Target(min(longest, max_side), shortest)
    kind = _kind(data)
    if kind == "application/pdf":
        return [_encode(page, "PNG") for page in _pdf_pages(data, target)]
    image, orientation, reduced = _decode(data, target)
    fitted = _fit(image, target)
    if kind in PASSTHROUGH and orientation == 1 and not reduced and fitted is image:
        return [Page(data, kind)]
    return [_encode(_upright(fitted, orientation), "PNG" if kind == "image/png" else "JPEG")]


def _kind(data: bytes) -> str:
    kind = sniff(data)
    if kind is None or not accepted(kind):
        raise Unreadable(f"cannot read {kind or 'this file type'}")
    return kind


def _header(data: bytes) -> PILImage.Image:
    """The image opened without decoding a pixel (Pillow reads the header only until `load`)."""
    heic_supported()
    try:
        PILImage.init()  # every decoder registered: one absent (HEIF without pillow-heif) is then known
        return PILImage.open(io.BytesIO(data), formats=[name for name in DECODERS if name in PILImage.ID])
    except (OSError, ValueError, PILImage.DecompressionBombError) as exc:
        raise Unreadable(f"the image could not be decoded: {type(exc).__name__}") from None


def _reduce(image: PILImage.Image, target: Target) -> bool:
    """Have a JPEG decode at its smallest reduction that still covers `target`; refuse what would still
    decode too large. True when the image will decode smaller than stored."""
    width, height = image.size
    scale = target.scale(width, height)
    if image.format == "JPEG" and scale < 1.0:
        image.draft(image.mode, (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))))
    if image.width * image.height > IMAGE_PIXEL_LIMIT:
        raise Unreadable(
            f"image of {width} x {height} pixels is larger than the {IMAGE_PIXEL_LIMIT // 1_000_000} "
            "megapixels a reader decodes: send it smaller (a phone's or scanner's normal size is fine)"
        )
    return image.size != (width, height)


def _decode(data: bytes, target: Target) -> tuple[PILImage.Image, int, bool]:
    """(the image decoded at no more than the reader needs, its EXIF orientation, whether it was reduced
    while decoding)."""
    image = _header(data)
    reduced = _reduce(image, target)
    try:
        orientation = int(image.getexif().get(ORIENTATION, 1) or 1)
        image.load()
    except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError) as exc:
        raise Unreadable(f"the image could not be decoded: {type(exc).__name__}") from None
    return image, orientation, reduced


def _upright(image: PILImage.Image, orientation: int) -> PILImage.Image:
    """Turn by the EXIF orientation (after downscaling: turning a small picture costs little)."""
    method = UPRIGHT.get(orientation)
    return image if method is None else image.transpose(method)


def _pdf_pages(data: bytes, target: Target) -> Iterator[PILImage.Image]:
    """Each page (the first MAX_PAGES) rendered straight at the reader's size, one at a time."""
    try:
        import pypdfium2
    except ImportError:
        raise Unreadable("PDF needs pypdfium2") from None
    try:
        pdf = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        raise Unreadable(f"the PDF could not be rendered: {exc}") from None
    try:
        if len(pdf) == 0:
            raise Unreadable("the PDF has no pages")
        for index in range(min(len(pdf), MAX_PAGES)):
            yield _render(pdf[index], index + 1, target)
    finally:
        pdf.close()


def _render(page: Any, number: int, target: Target) -> PILImage.Image:
    import pypdfium2

    try:
        width, height = page.get_size()  # points, 1/72 inch
        if not (width > 0 and height > 0):
            raise Unreadable(f"page {number} of the PDF has no size")
        scale = min(PDF_DPI / 72 * target.scale(width * PDF_DPI / 72, height * PDF_DPI / 72),
                    math.sqrt(PAGE_PIXEL_LIMIT / (width * height)))  # fmt: skip
        return page.render(scale=scale).to_pil().convert("RGB")
    except pypdfium2.PdfiumError as exc:
        raise Unreadable(f"the PDF could not be rendered: {exc}") from None
    finally:
        page.close()


def _fit(image: PILImage.Image, target: Target) -> PILImage.Image:
    """Downscale (never up) into `target`; RGB or greyscale out. The same object back when nothing changes."""
    scale = target.scale(*image.size)
    if image.mode not in ("RGB", "L", "RGBA", "LA"):  # palette, bilevel, CMYK, 16-bit: resample as RGB
        image = image.convert("RGB")
    if scale < 1.0:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, PILImage.Resampling.LANCZOS, reducing_gap=3.0)
    return image if image.mode in ("RGB", "L") else image.convert("RGB")


def _encode(image: PILImage.Image, fmt: str) -> Page:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(buffer, format="JPEG", quality=88, optimize=True)
        return Page(buffer.getvalue(), "image/jpeg")
    image.save(buffer, format="PNG", optimize=True)
    return Page(buffer.getvalue(), "image/png")
