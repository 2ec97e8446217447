"""The OpenAI simulator answering from ground truth: a request's first image is matched, by a difference
hash, to a registered generated document (simulators.receipts), and answered with its truth."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image


def fingerprint(image: Image.Image) -> int:
    """A 64-bit difference hash: survives re-encoding, downscaling and rasterising a PDF of the image."""
    small = image.convert("L").resize((9, 8), Image.Resampling.BILINEAR)
    px = list(small.tobytes())
    bits = [px[row * 9 + col] > px[row * 9 + col + 1] for row in range(8) for col in range(8)]
    return sum(1 << i for i, bit in enumerate(bits) if bit)


class GroundTruthResponder:
    """For `OpenAISimulator.responder`: answers a Chat Completions request with the ground truth of the
    registered document whose picture is nearest the request's first image, as a perfect model would.
    An image matching nothing gets a refusal, as the model gives for what is not a document."""

    def __init__(self, max_distance: int = 10) -> None:
        self.known: list[tuple[int, dict[str, Any]]] = []
        self.max_distance = max_distance

    def register(self, data: bytes, truth: dict[str, Any]) -> None:
        self.known.append((fingerprint(_first_picture(data)), truth))

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        url = _first_image_url(body)
        if url is None or not self.known:
            return {"refusal": "I can't identify a receipt or invoice in this request."}
        import base64

        seen = fingerprint(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
        distance, truth = min(((bin(seen ^ fp).count("1"), t) for fp, t in self.known), key=lambda x: x[0])
        if distance > self.max_distance:
            return {"refusal": "I'm sorry, I can't read a receipt or invoice in this image."}
        return {"json": truth}


def _first_picture(data: bytes) -> Image.Image:
    if data.startswith(b"%PDF"):
        import pypdfium2

        pdf = pypdfium2.PdfDocument(data)
        try:
            return pdf[0].render(scale=1).to_pil()
        finally:
            pdf.close()
    return Image.open(io.BytesIO(data))


def _first_image_url(body: dict[str, Any]) -> str | None:
    for message in body.get("messages") or []:
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "image_url":
                url = (part.get("image_url") or {}).get("url", "")
                if url.startswith("data:"):
                    return url
    return None
