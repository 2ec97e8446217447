"""Generated receipts and supplier invoices with their ground truth, for the OCR tests, bench and demo.

Each document is drawn with Pillow from a seed (so a failure can be reproduced): a till receipt, a supplier
invoice or a plain ticket, in a DejaVu font when installed (else Pillow's own), with the date, amount and
currency styles of different countries, a small rotation and speckle noise. `truth` is what a perfect reader
would extract, in the OpenAI extraction schema's shape, so the OpenAI simulator can answer with it
(simulators.receipt_answers) and the offline engine can be scored against it.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONTS = ("DejaVuSans.ttf", "DejaVuSansMono.ttf", "DejaVuSerif.ttf", "DejaVuSansCondensed.ttf")
SUPPLIERS = (
    ("Bureau Vallee", "FR40303265045", "12 Rue de Rivoli, Paris", "EUR"),
    ("Cafe Lumiere", "FR83404833048", "4 Place Bellecour, Lyon", "EUR"),
    ("Nordic Office Supply", "SE556677889901", "Drottninggatan 5, Stockholm", "SEK"),
    ("Baeckerei Schmidt", "DE129273398", "Hauptstrasse 17, Berlin", "EUR"),
    ("Greenleaf Stationers", "GB123456789", "21 High Street, Oxford", "GBP"),
    ("Atlas Hardware", "US94-1081436", "800 Market St, San Francisco", "USD"),
    ("Copenhagen Coffee", "DK13585628", "Stroget 10, Copenhagen", "DKK"),
    ("Alpine Druck AG", "CHE116281710", "Bahnhofstrasse 3, Zurich", "CHF"),
    ("Maple Print Shop", "CA123456789", "55 King St W, Toronto", "CAD"),
    ("Tipografia Rossi", "IT00743110157", "Via Roma 8, Milano", "EUR"),
)
ITEMS = (
    "Printer paper A4", "Toner cartridge", "Espresso", "Sandwich", "USB cable", "Notebook", "Stapler",
    "Coffee beans 1kg", "Envelopes C5", "Desk lamp", "Cleaning service", "Parking", "Train ticket",
    "Screws M4 x100", "Gel pens", "Whiteboard markers", "Lunch menu", "Delivery fee",
)  # fmt: skip
VAT_RATES = {"EUR": (20, 10, 19, 7), "GBP": (20,), "SEK": (25, 12), "DKK": (25,), "CHF": (8.1,),
             "USD": (8.5, 7.25), "CAD": (13, 5)}  # fmt: skip
SYMBOLS = {"EUR": "€", "GBP": "£", "USD": "$"}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Line:
    description: str
    quantity: int
    unit_price: Decimal
    vat_rate: float

    @property
    def amount(self) -> Decimal:
        return (self.unit_price * self.quantity).quantize(CENT, ROUND_HALF_UP)

    @property
    def truth(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "quantity": self.quantity,
            "unit_price": float(self.unit_price),
            "vat_rate": self.vat_rate,
            "amount": float(self.amount),
        }


@dataclass(frozen=True)
class Receipt:
    seed: int
    layout: str
    supplier: str
    vat_id: str
    address: str
    number: str
    issued: date
    due: date | None
    currency: str
    lines: list[Line] = field(default_factory=list)

    @property
    def net(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))

    @property
    def vat(self) -> Decimal:
        taxed = sum((line.amount * Decimal(str(line.vat_rate)) / 100 for line in self.lines), Decimal(0))
        return taxed.quantize(CENT, ROUND_HALF_UP)

    @property
    def total(self) -> Decimal:
        return self.net + self.vat

    @property
    def truth(self) -> dict[str, Any]:
        """What a perfect reader extracts, in the OpenAI extraction schema's shape."""
        return {
            "supplier": {"name": self.supplier, "vat_id": self.vat_id, "address": self.address},
            "number": self.number,
            "issue_date": self.issued.isoformat(),
            "due_date": self.due.isoformat() if self.due else None,
            "currency": self.currency,
            "lines": [line.truth for line in self.lines],
            "net": float(self.net),
            "vat": float(self.vat),
            "total": float(self.total),
            "payment": None,
        }


def make(seed: int, today: date | None = None) -> Receipt:
    """A random but consistent document: lines sum to the net, VAT per line rate, net + VAT = total."""
    rng = random.Random(seed)
    name, vat_id, address, currency = rng.choice(SUPPLIERS)
    layout = ("till", "invoice", "ticket")[seed % 3]
    issued = (today or date.today()) - timedelta(days=rng.randint(1, 300))
    rates = VAT_RATES[currency]
    rate = rng.choice(rates)
    lines = [
        Line(rng.choice(ITEMS), rng.choice((1, 1, 1, 2, 3, 5)),
             Decimal(rng.randint(50, 25000 if layout == "invoice" else 4000)) / 100, rate)
        for _ in range(rng.randint(1, 5))
    ]  # fmt: skip
    due = issued + timedelta(days=30) if layout == "invoice" else None
    prefix = {"invoice": "INV", "till": "R", "ticket": "T"}[layout]
    return Receipt(seed, layout, name, vat_id, address, f"{prefix}-{rng.randint(1000, 99999)}", issued, due,
                   currency, lines)  # fmt: skip


# ---- drawing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Style:
    font: Any
    bold: Any
    size: int
    date_format: int
    comma_decimal: bool
    symbol: bool
    rotation: float
    noise: float


def style_for(receipt: Receipt, rotation: float | None = None, noise: float | None = None) -> Style:
    rng = random.Random(receipt.seed * 7919)
    size = rng.choice((18, 20, 22, 24)) if receipt.layout != "invoice" else rng.choice((18, 20))
    name = rng.choice(FONTS)
    return Style(
        font=_font(name, size),
        bold=_font(name.replace(".ttf", "-Bold.ttf"), size + 4),
        size=size,
        date_format=rng.randrange(5),
        comma_decimal=receipt.currency in ("SEK", "DKK")
        or (receipt.currency == "EUR" and rng.random() < 0.4),
        symbol=receipt.currency in SYMBOLS and rng.random() < 0.5,
        rotation=rng.uniform(-2.5, 2.5) if rotation is None else rotation,
        noise=rng.uniform(0.0, 0.015) if noise is None else noise,
    )


def _font(name: str, size: int) -> Any:
    path = FONT_DIR / name
    if path.exists():
        return ImageFont.truetype(str(path), size)
    fallback = FONT_DIR / "DejaVuSans.ttf"
    if "-Bold" in name and fallback.exists():
        return ImageFont.truetype(str(fallback), size)
    return ImageFont.load_default(size=size)


def money(value: Decimal, style: Style, currency: str) -> str:
    text = f"{value:,.2f}"
    if style.comma_decimal:
        text = text.replace(",", " ").replace(".", ",")
    return f"{SYMBOLS[currency]}{text}" if style.symbol else text


def date_text(day: date, style: Style) -> str:
    return (
        day.isoformat(),
        day.strftime("%d/%m/%Y"),
        day.strftime("%d.%m.%Y"),
        f"{day.day:02d} {MONTHS[day.month - 1]} {day.year}",
        f"{MONTHS[day.month - 1]} {day.day}, {day.year}",
    )[style.date_format]


def rows(receipt: Receipt, style: Style) -> list[tuple[str, str, str]]:
    """(kind, left, right) rows; kind is 'title', 'text' or 'pair' (left and right aligned)."""
    cur = receipt.currency
    rate = receipt.lines[0].vat_rate
    rate_text = f"{rate:g}%"
    out: list[tuple[str, str, str]] = [("title", receipt.supplier, ""), ("text", receipt.address, "")]
    out.append(("text", f"VAT No: {receipt.vat_id}", ""))
    label = {"invoice": "Invoice No", "till": "Receipt", "ticket": "Ticket"}[receipt.layout]
    out.append(("pair", f"{label}: {receipt.number}", ""))
    out.append(("pair", f"Date: {date_text(receipt.issued, style)}", ""))
    if receipt.due:
        out.append(("pair", f"Due date: {date_text(receipt.due, style)}", ""))
    out.append(("rule", "", ""))
    for line in receipt.lines:
        left = f"{line.quantity} x {line.description}" if line.quantity > 1 else line.description
        out.append(("pair", left, money(line.amount, style, cur)))
    out.append(("rule", "", ""))
    net_label = "Net amount" if receipt.layout == "invoice" else "Subtotal"
    out.append(("pair", net_label, money(receipt.net, style, cur)))
    out.append(("pair", f"VAT {rate_text}", money(receipt.vat, style, cur)))
    out.append(("pair", f"TOTAL {cur}", money(receipt.total, style, cur)))
    if receipt.layout == "invoice":
        out.append(("text", "Payment within 30 days. Thank you for your business.", ""))
    else:
        out.append(("text", "Thank you!", ""))
    return out


def render(receipt: Receipt, style: Style | None = None) -> Image.Image:
    """The document as a grayscale photo-like image: drawn, rotated slightly, speckled, softened."""
    style = style or style_for(receipt)
    width = 1100 if receipt.layout == "invoice" else 560 + style.size * 4
    line_height = int(style.size * 1.6)
    content = rows(receipt, style)
    height = 80 + line_height * (len(content) + 2)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    y, margin = 40, 40
    for kind, left, right in content:
        if kind == "title":
            centred = (width - draw.textlength(left, font=style.bold)) / 2
            x = margin if receipt.layout == "invoice" else centred
            draw.text((x, y), left, font=style.bold, fill=0)
            y += line_height + 6
            continue
        if kind == "rule":
            draw.line((margin, y + line_height // 2, width - margin, y + line_height // 2), fill=60, width=2)
        else:
            draw.text((margin, y), left, font=style.font, fill=0)
            if right:
                draw.text((width - margin - draw.textlength(right, font=style.font), y), right,
                          font=style.font, fill=0)  # fmt: skip
        y += line_height
    return _photographed(image, style)


def _photographed(image: Image.Image, style: Style) -> Image.Image:
    rng = random.Random(int(style.rotation * 1000) + image.height)
    if style.rotation:
        image = image.rotate(style.rotation, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=235)
    if style.noise:
        pixels = image.load()
        assert pixels is not None
        for _ in range(int(image.width * image.height * style.noise)):
            x, y = rng.randrange(image.width), rng.randrange(image.height)
            pixels[x, y] = rng.choice((0, 110, 190, 255))
    return image.filter(ImageFilter.GaussianBlur(0.6))


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    """PNG, JPEG or PDF bytes (a PDF of one page, the image at 150 dpi)."""
    buffer = io.BytesIO()
    if fmt == "PDF":
        image.convert("RGB").save(buffer, format="PDF", resolution=150.0)
    elif fmt == "JPEG":
        image.convert("RGB").save(buffer, format="JPEG", quality=90)
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue()


def document(seed: int, fmt: str = "PNG", today: date | None = None, **style: Any) -> tuple[bytes, Receipt]:
    """One generated file and its receipt (ground truth in `.truth`)."""
    receipt = make(seed, today)
    return encode(render(receipt, style_for(receipt, **style)), fmt), receipt
