"""The fast mode the report tests write their reports in: each figure as a PNG alone, at a
low resolution. Writing a tiny report's figures as PNG and SVG at the default resolution
takes about twice as long; one test (tests/report/test_html.py) keeps the default."""

from __future__ import annotations

from typing import Any

FAST: dict[str, Any] = {"figure_formats": ("png",), "dpi": 40}
