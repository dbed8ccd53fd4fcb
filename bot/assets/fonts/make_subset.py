"""Rebuild wqy-microhei-subset.woff from the WenQuanYi Micro Hei collection (see README.md). Not used by the app.

    .venv/bin/python bot/assets/fonts/make_subset.py /usr/share/fonts/truetype/wqy/wqy-microhei.ttc

Needs fontTools (``pip install fonttools``); the app itself reads the result with Pillow only.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset

HERE = Path(__file__).resolve().parent
OUT = HERE / "wqy-microhei-subset.woff"

# Unicode blocks kept (inclusive ranges).
RANGES = [
    (0x0020, 0x007E),  # Basic Latin (ASCII)
    (0x00A0, 0x00FF),  # Latin-1 Supplement (· × and accented Latin in names)
    (0x2000, 0x206F),  # General Punctuation (— … ‘ ’ “ ”)
    (0x2190, 0x21FF),  # Arrows
    (0x2200, 0x22FF),  # Mathematical Operators (≥ ≤)
    (0x25A0, 0x25FF),  # Geometric Shapes (■ ● ▲)
    (0x3000, 0x303F),  # CJK Symbols and Punctuation (、。「」《》)
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xFF00, 0xFFEF),  # Halfwidth and Fullwidth Forms (，：（）％)
]


def main(source: str) -> None:
    unicodes = ",".join(f"U+{a:04X}-{b:04X}" for a, b in RANGES)
    subset.main(
        [
            source,
            "--font-number=0",  # the collection's first face, WenQuanYi Micro Hei (not the Mono one)
            f"--unicodes={unicodes}",
            "--flavor=woff",  # zlib-compressed tables: FreeType reads it everywhere, no brotli needed
            "--no-hinting",
            "--name-IDs=*",  # keep the copyright and licence entries
            "--name-languages=*",
            "--notdef-outline",
            "--layout-features=*",
            f"--output-file={OUT}",
        ]
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
