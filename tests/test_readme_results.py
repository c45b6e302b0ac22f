"""README.md's Results section quotes docs/results.md: the headline table, the search accuracies
and their CPU-seconds must read the same in both files, cell by cell, so that a number edited in
one place only fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RESULTS = ROOT / "docs" / "results.md"
TARGETS = ("CIFAR-10", "CIFAR-100", "ImageNet16-120")
SIZES = ("78", "156", "469", "781", "1,563")

Table = list[list[str]]


def section(text: str, heading: str) -> str:
    """The text under `heading` (a whole line, e.g. '## Results') up to the next heading of the
    same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines()
    start = lines.index(heading)
    end = len(lines)
    for i in range(start + 1, len(lines)):
        hashes = len(lines[i]) - len(lines[i].lstrip("#"))
        if 0 < hashes <= level and lines[i][hashes : hashes + 1] == " ":
            end = i
            break
    return "\n".join(lines[start + 1 : end])


def clean(cell: str) -> str:
    """A cell's text without Markdown emphasis or code marks."""
    return cell.replace("**", "").replace("`", "").strip()


def tables(text: str) -> list[Table]:
    """Every Markdown table of `text`: its header row, then its data rows, cells cleaned."""
    found: list[Table] = []
    rows: Table = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [clean(c) for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                rows.append(cells)
        elif rows:
            found.append(rows)
            rows = []
    return found


def keyed(table: Table) -> dict[tuple[str, str], dict[str, str]]:
    """(target, predictor) -> {column: cell}; an empty target cell continues the row above."""
    header, *rows = table
    out: dict[tuple[str, str], dict[str, str]] = {}
    target = ""
    for row in rows:
        assert len(row) == len(header), f"row of {len(row)} cells under {header}: {row}"
        target = row[0] or target
        key = (target, row[1])
        assert key not in out, f"{key} appears twice in one table"
        out[key] = dict(zip(header[2:], row[2:], strict=True))
    return out


def headline(text: str) -> Table:
    candidates = [t for t in tables(text) if t[0] == ["target", "predictor", *SIZES]]
    assert len(candidates) == 1, f"expected one headline table, found {len(candidates)}"
    return candidates[0]


def mean(cell: str) -> str:
    """'0.789 ± 0.008' -> '0.789'; '2,165' -> '2,165'."""
    return cell.split("±")[0].strip()


@pytest.fixture(scope="module")
def readme() -> str:
    return section(README.read_text(encoding="utf-8"), "## Results")


@pytest.fixture(scope="module")
def results() -> str:
    return RESULTS.read_text(encoding="utf-8")


def test_headline_table_is_the_same_in_both_files(readme: str, results: str) -> None:
    quoted = keyed(headline(readme))
    recorded = keyed(headline(section(results, "### Headline table")))
    assert {t for t, _ in quoted} == set(TARGETS)
    assert ("CIFAR-10", "fusion_flow_m3_smooth") in quoted
    assert ("CIFAR-10", "anchor") in quoted
    differ = [
        f"{key} at {size}: README {quoted[key].get(size)!r}, docs/results.md "
        f"{recorded.get(key, {}).get(size)!r}"
        for key in sorted(set(quoted) | set(recorded))
        for size in SIZES
        if quoted.get(key, {}).get(size) != recorded.get(key, {}).get(size)
    ]
    assert not differ, "README and docs/results.md headline tables differ:\n" + "\n".join(differ)


def test_headline_row_agrees_with_the_ablation_and_label_tables(readme: str, results: str) -> None:
    quoted = keyed(headline(readme))
    ablation = [t for t in tables(results) if t[0][:2] == ["variant", "what changes"]]
    assert len(ablation) == 1, "expected one ablation table in docs/results.md"
    header, *rows = ablation[0]
    row = next(r for r in rows if r[0] == "fusion_flow_m3_smooth")
    recorded = dict(zip(header, row, strict=True))
    for size in SIZES:
        assert recorded[size] == quoted["CIFAR-10", "fusion_flow_m3_smooth"][size], size

    protocols = [
        t for t in tables(results) if t[0][:2] == ["protocol", "trained on → scored against, over"]
    ]
    assert len(protocols) == 1, "expected one protocol comparison table in docs/results.md"
    header, *rows = protocols[0]
    strict, protocol = {}, ""
    for row in rows:
        protocol = row[0] or protocol
        if (
            protocol.startswith("strict")
            and row[header.index("predictor")] == "fusion_flow_m3_smooth"
        ):
            strict[row[header.index("labels")]] = row[header.index("parzc")]  # the run's rows
    assert strict == quoted["CIFAR-10", "fusion_flow_m3_smooth"], "strict rows differ from README"


def test_protocol_sentence_matches_the_protocol_table(readme: str, results: str) -> None:
    """The README's figures on the anchors' protocols are the protocol table's."""
    text = " ".join(readme.split())
    seed_mean = re.search(r"parzc reaches ([\d.]+) / ([\d.]+) / ([\d.]+) at 78 / 156 / 1,563", text)
    same_label = re.search(r"networks drawn as cells are\) ([\d.]+) at 78 labels", text)
    assert seed_mean and same_label, "README's protocol sentence is not in the expected form"
    (table,) = [
        t for t in tables(results) if t[0][:2] == ["protocol", "trained on → scored against, over"]
    ]
    header, *rows = table
    parzc: dict[tuple[str, str], str] = {}
    protocol = ""
    for row in rows:
        protocol = row[0] or protocol
        key = (protocol.split(" (")[0], row[header.index("labels")])
        parzc[key] = mean(row[header.index("parzc")])
    assert [parzc["seed mean, all cells", n] for n in ("78", "156", "1,563")] == list(
        seed_mean.groups()
    )
    assert parzc["same label", "78"] == same_label.group(1)


def test_search_sentence_matches_the_verify_rows(readme: str, results: str) -> None:
    text = " ".join(readme.split())
    accuracies = re.search(r"picks cells of ([\d.]+) / ([\d.]+) / ([\d.]+) % test accuracy", text)
    seconds = re.search(r"for ([\d,]+) to ([\d,]+) CPU-seconds", text)
    assert accuracies and seconds, "README's search sentence is not in the expected form"
    assert "at most 156 labels" in text and "fusion_no_slots" in text

    rows: dict[str, dict[str, str]] = {}
    for table in tables(section(results, "## NB201 search")):
        header = table[0]
        if header[:2] != ["target", "method"] or "top-1 test acc" not in header:
            continue
        for (target, method), cells in keyed(table).items():
            if method.startswith("verify (fusion_no_slots n = 146"):
                assert target not in rows, f"two verify fusion_no_slots rows for {target}"
                rows[target] = cells
    assert set(rows) == set(TARGETS)
    for target, quoted in zip(TARGETS, accuracies.groups(), strict=True):
        assert mean(rows[target]["top-1 test acc"]) == quoted, target
        assert int(rows[target]["labels"]) <= 156, target
    cpu = sorted(int(rows[t]["CPU-s"].replace(",", "")) for t in TARGETS)
    assert (cpu[0], cpu[-1]) == tuple(int(s.replace(",", "")) for s in seconds.groups())
