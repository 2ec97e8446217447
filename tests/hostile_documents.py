"""Documents built to exhaust a reader's memory, as found by probing POST /documents: tiny files that
describe enormous pages or pictures. Built here, byte by byte, never committed."""

from __future__ import annotations

import struct
import zlib


def pdf_of_pages(width_pt: int, height_pt: int, count: int) -> bytes:
    """A valid PDF of `count` empty pages of the given size in points (1/72 inch): a few hundred bytes."""
    kids = " ".join(f"{3 + i} 0 R" for i in range(count))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
        *(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width_pt} {height_pt}] >>".encode()
          for _ in range(count)),
    ]  # fmt: skip
    return _pdf(objects)


def image_pdf(side: int) -> bytes:
    """A one-page letter-size PDF showing one `side` x `side` RGB picture, stored deflated (under a MB)."""
    row = b"\x00" * (3 * side)
    packer = zlib.compressobj(9)
    picture = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    content = b"q 612 0 0 792 0 0 cm /Im0 Do Q"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im0 5 0 R >> >> "
        b"/Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /BitsPerComponent 8 /ColorSpace /DeviceRGB "
        b"/Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream" % (side, side, len(picture), picture),
    ]
    return _pdf(objects)


def _pdf(objects: list[bytes]) -> bytes:
    """The objects numbered from 1 (the first is the catalog), with their cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def blank_png(width: int, height: int) -> bytes:
    """An all-black RGB PNG: `width` x `height` pixels in a few hundred kilobytes of zlib."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + 3 * width)  # filter byte + black pixels
    packer = zlib.compressobj(9)
    compressed = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", compressed) + chunk(b"IEND", b"")


def issue_17() -> dict[str, bytes]:
    """The three documents of the report: 10 pages of 3600 pt, one page of 14400 pt, an 8944 px PNG."""
    return {
        "ten pages of 3600 pt": pdf_of_pages(3600, 3600, 10),
        "one page of 14400 pt": pdf_of_pages(14400, 14400, 1),
        "8944 x 8944 PNG": blank_png(8944, 8944),
    }
