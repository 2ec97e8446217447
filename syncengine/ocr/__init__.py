"""OCR's ground floor: what a document must be to be read (`prepare`: sniffing, pages, sizes), what a reading
must say to be booked (`validation`), and where the uploaded bytes are kept (`documents`). The engines that
read are connectors (connectors/openai_ocr.py, connectors/tesseract_ocr.py); the flow is tasks/ocr.py."""
