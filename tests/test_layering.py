"""Handlers, services, cards and the dialog engine never import the runtime (issue 10 §4): the runtime imports the
handlers, handlers get what they use of it as ``bot.core.routing.Services``, services take settings, clock, session and
a channel-choice function."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["bot/services", "handlers", "cards", "bot/dialogs", "bot/core/routing.py"]
RUNTIME = re.compile(r"bot\.runtime|from bot import runtime")


def test_no_layer_below_the_runtime_names_it() -> None:
    files = [p for layer in LAYERS for p in ([ROOT / layer] if layer.endswith(".py") else (ROOT / layer).rglob("*.py"))]
    found = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in files
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if RUNTIME.search(line)
    ]
    assert found == []


def test_importing_the_handlers_does_not_import_the_runtime() -> None:
    modules = "handlers, bot.core.routing, bot.dialogs.engine, bot.services.recipients"
    code = f"import sys, {modules}; print('bot.runtime' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
