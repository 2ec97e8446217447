"""Preparation of uploaded documents for OCR: sniffing, EXIF orientation, sizing for the model, PDF pages."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from syncengine.ocr.prepare import ORIENTATION, Unreadable, accepted, for_model, heic_supported, images, sniff


def photo(width: int, height: int, orientation: int | None = None, fmt: str = "JPEG") -> bytes:
    """A white picture whose left third is black, optionally tagged with an EXIF orientation."""
    image = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(image).rectangle((0, 0, width // 3, height), fill="black")
    exif = Image.Exif()
    if orientation:
        exif[ORIENTATION] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, exif=exif.tobytes())
    return buffer.getvalue()


def pdf(pages: int) -> bytes:
    sheets = [Image.new("RGB", (620, 877), "white") for _ in range(pages)]
    for number, sheet in enumerate(sheets, start=1):
        ImageDraw.Draw(sheet).text((60, 60), f"page {number}", fill="black")
    buffer = io.BytesIO()
    sheets[0].save(buffer, format="PDF", save_all=True, append_images=sheets[1:], resolution=72.0)
    return buffer.getvalue()


def decoded(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_a_sideways_phone_photo_is_turned_upright():
    # Orientation 6: the camera stored the picture turned; a viewer rotates it 90° clockwise.
    data = photo(300, 120, orientation=6)
    [page] = for_model(data, "high", 2048)
    upright = decoded(page.data).convert("L")
    assert page.content_type == "image/jpeg" and upright.size == (120, 300)
    assert upright.getpixel((60, 20)) < 60 and upright.getpixel((60, 280)) > 200  # the black third on top
    assert next(images(data, 2048)).size == (120, 300)


def test_an_upright_image_small_enough_is_sent_byte_for_byte():
    data = photo(400, 600, fmt="PNG")
    [page] = for_model(data, "high", 2048)
    assert page.data == data and page.content_type == "image/png"
    assert page.data_url().startswith("data:image/png;base64,iVBOR")


@pytest.mark.parametrize(
    ("detail", "max_side", "size"),
    [("high", 2048, (768, 1024)), ("low", 2048, (384, 512)), ("high", 600, (450, 600))],
)
def test_a_large_photo_is_downscaled_to_what_the_model_uses(detail, max_side, size):
    [page] = for_model(photo(3000, 4000), detail, max_side)
    assert decoded(page.data).size == size and page.content_type == "image/jpeg"


def test_each_pdf_page_becomes_one_image():
    pages = for_model(pdf(2), "high", 2048)
    assert [p.content_type for p in pages] == ["image/png", "image/png"]
    sizes = [decoded(p.data).size for p in pages]
    assert all(min(size) <= 768 for size in sizes) and sizes[0][1] > sizes[0][0]  # portrait, as printed
    assert len(list(images(pdf(3), 1500))) == 3 and max(next(images(pdf(1), 1500)).size) <= 1500


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"%PDF-1.4\n" + b"\x00garbage" * 50, "the PDF could not be rendered"),
        (b"hello, I am a text file\n", "cannot read this file type"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "the image could not be decoded"),
    ],
)
def test_what_cannot_be_read_says_why(data, reason):
    with pytest.raises(Unreadable, match=reason):
        for_model(data, "high", 2048)


def test_heic_is_recognised_by_its_content_and_read_only_with_pillow_heif():
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 32
    assert sniff(heic) == "image/heic" and sniff(b"\x00\x00\x00\x18ftypisom") is None
    assert accepted("image/heic") is heic_supported()
    assert accepted("application/pdf") and not accepted("image/gif") and not accepted(None)
