"""Hospital name matching, a quality benchmark (issue 11): the matcher against a table of real Zhejiang hospitals.

Loads tests/data/hospitals_zhejiang.csv as the customer directory (names and the directory's aliases; the short
names people write that the directory does not know are only queries) and runs every row of
tests/data/hospital_queries.csv through the matcher of bot/parsing/customer_match.py and through the matcher as it
was before issue 11 (bot/parsing/customer_match.py at 1dad03f, read from git). Prints per matcher:

- top-1 %: rows with one expected hospital where the matcher resolved exactly that one (status exact/unique);
- asked %: ambiguous rows where it asked (status ambiguous) and offered only right answers, all of them when
  they fit in the choice list;
- false-suggestion %: absent rows (not in the directory) where it picked or offered anything at all;
- wrong-pick %: rows of any kind where it resolved to a hospital that is not an expected one (the worst outcome);
- µs/call: wall time per match() over the whole table (best of ``--repeats`` passes, after a warm-up pass).

``python bench/hospital_match.py [--repeats 5] [--show KIND]`` (``--show`` lists the failing rows of one kind,
or ``all``). tests/services/test_hospital_matching.py loads this file to assert the targets.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOSPITALS = ROOT / "tests" / "data" / "hospitals_zhejiang.csv"
QUERIES = ROOT / "tests" / "data" / "hospital_queries.csv"
for path in (ROOT, Path(__file__).resolve().parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

KINDS = ("full", "short", "abbreviation", "pinyin", "typo", "ambiguous", "absent")


@dataclass(frozen=True)
class Hospital:
    id: int
    name: str
    city: str
    aliases: tuple[str, ...]
    also_called: tuple[str, ...]


@dataclass(frozen=True)
class Query:
    text: str
    expected: tuple[str, ...]  # empty: not in the directory
    kind: str


def _split(cell: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in cell.split(";") if part.strip())


def load_hospitals(path: Path = HOSPITALS) -> list[Hospital]:
    """The hospital table; ids follow the file's order (1, 2, …), like a directory imported from it."""
    with path.open(encoding="utf-8", newline="") as fh:
        return [
            Hospital(n, row["name"], row["city"], _split(row["aliases"]), _split(row["also_called"]))
            for n, row in enumerate(csv.DictReader(fh), start=1)
        ]


def load_queries(path: Path = QUERIES) -> list[Query]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [
            Query(row["query"], tuple(n for n in row["expected"].split("|") if n), row["kind"])
            for row in csv.DictReader(fh)
        ]


@dataclass
class Outcome:
    """One row's result: what the matcher said, and whether that is right for the row's kind."""

    query: Query
    status: str
    names: tuple[str, ...]
    ok: bool
    wrong_pick: bool


@dataclass
class Figures:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)
    us_per_call: float = 0.0

    def rows(self, *kinds: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.query.kind in kinds]

    def share(self, outcomes: Sequence[Outcome], pred: Callable[[Outcome], bool]) -> float:
        return 100.0 * sum(1 for o in outcomes if pred(o)) / len(outcomes) if outcomes else 0.0

    @property
    def single(self) -> list[Outcome]:
        """Rows with exactly one expected hospital (every kind but ambiguous and absent)."""
        return [o for o in self.outcomes if len(o.query.expected) == 1]

    @property
    def top1(self) -> float:
        return self.share(self.single, lambda o: o.ok)

    @property
    def asked(self) -> float:
        return self.share(self.rows("ambiguous"), lambda o: o.ok)

    @property
    def false_suggestions(self) -> float:
        return self.share(self.rows("absent"), lambda o: not o.ok)

    @property
    def wrong_picks(self) -> float:
        return self.share(self.outcomes, lambda o: o.wrong_pick)

    def by_kind(self, kind: str) -> float:
        return self.share(self.rows(kind), lambda o: o.ok)


def judge(query: Query, status: str, names: tuple[str, ...], resolved: str | None) -> Outcome:
    expected = set(query.expected)
    wrong_pick = resolved is not None and resolved not in expected
    if not expected:
        ok = not names
    elif len(expected) == 1:
        ok = resolved in expected
    else:
        offered = set(names)
        ok = (
            status == "ambiguous"
            and offered <= expected
            and (offered == expected or len(offered) == len(names) >= 5)  # a full choice list of right answers
        )
    return Outcome(query, status, names, ok, wrong_pick)


def evaluate(name: str, match: Callable[[str], Any], queries: Sequence[Query], repeats: int = 0) -> Figures:
    """Run every query through ``match`` (a CustomerMatcher.match of either module); time ``repeats`` passes."""
    figures = Figures(name)
    for query in queries:
        result = match(query.text)
        best = result.best
        names = tuple(c.entry.name for c in result.candidates)
        figures.outcomes.append(judge(query, result.status, names, best.name if best is not None else None))
    if repeats:
        texts = [q.text for q in queries]
        best_s = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for text in texts:
                match(text)
            best_s = min(best_s, time.perf_counter() - start)
        figures.us_per_call = best_s / len(texts) * 1e6
    return figures


def new_matcher(hospitals: Sequence[Hospital]) -> Any:
    from bot.parsing.customer_match import CustomerEntry, CustomerMatcher

    return CustomerMatcher(CustomerEntry(h.id, h.name, h.aliases) for h in hospitals)


# The matcher before issue 11: bot/parsing/customer_match.py at this commit, read from git (not kept as a copy).
BASELINE_REV = "1dad03f"


def _baseline_module() -> Any:
    import subprocess
    import types

    root = Path(__file__).resolve().parents[1]
    try:
        source = subprocess.run(
            ["git", "show", f"{BASELINE_REV}:bot/parsing/customer_match.py"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"the baseline needs git history ({BASELINE_REV}), a shallow clone lacks it: {exc}") from exc
    module = types.ModuleType("customer_match_baseline")
    sys.modules[module.__name__] = module  # dataclasses resolve annotations through sys.modules
    exec(compile(source, f"{BASELINE_REV}:bot/parsing/customer_match.py", "exec"), module.__dict__)
    return module


def old_matcher(hospitals: Sequence[Hospital]) -> Any:
    old = _baseline_module()
    return old.CustomerMatcher(old.CustomerEntry(h.id, h.name, h.aliases) for h in hospitals)


def report(all_figures: Sequence[Figures], queries: Sequence[Query]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for q in queries:
        counts[q.kind] += 1
    header = f"{'':28}" + "".join(f"{f.name:>12}" for f in all_figures)
    lines = [f"{len(queries)} queries: " + ", ".join(f"{k} {counts[k]}" for k in KINDS), "", header]

    def line(label: str, values: Sequence[float], fmt: str = "{:11.1f}%") -> None:
        lines.append(f"{label:28}" + "".join(" " + fmt.format(v) for v in values))

    line(f"top-1 ({len(all_figures[0].single)} rows)", [f.top1 for f in all_figures])
    line(f"asked ({counts['ambiguous']} ambiguous)", [f.asked for f in all_figures])
    line(f"false suggestion ({counts['absent']} absent)", [f.false_suggestions for f in all_figures])
    line("wrong pick (all rows)", [f.wrong_picks for f in all_figures])
    for kind in KINDS[:5]:
        line(f"  top-1 {kind}", [f.by_kind(kind) for f in all_figures])
    line("µs/call", [f.us_per_call for f in all_figures], "{:11.1f} ")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--show", default="", help="list the failing rows of this kind (or 'all') for the new matcher")
    args = parser.parse_args(argv)
    hospitals = load_hospitals()
    queries = load_queries()
    from pypinyin import lazy_pinyin

    lazy_pinyin("浙")  # load pypinyin's dictionaries before timing the builds
    started = time.perf_counter()
    new = new_matcher(hospitals)
    build_new = time.perf_counter() - started
    started = time.perf_counter()
    old = old_matcher(hospitals)
    build_old = time.perf_counter() - started
    figures = [
        evaluate("before", old.match, queries, args.repeats),
        evaluate("issue 11", new.match, queries, args.repeats),
    ]
    print(
        f"{len(hospitals)} hospitals; matcher built in {build_old * 1e3:.0f} ms (before)"
        f" / {build_new * 1e3:.0f} ms (issue 11)"
    )
    print(report(figures, queries))
    if args.show:
        for o in figures[1].outcomes:
            if not o.ok and args.show in ("all", o.query.kind):
                print(
                    f"{o.query.kind:12} {o.query.text:24} want {'|'.join(o.query.expected) or '-':40}"
                    f" got {o.status} {'|'.join(o.names)}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
