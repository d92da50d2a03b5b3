"""Plain-text (markdown) tables of one run: a table per workload, peers as rows, and a ratio column
that relates each peer's key figure to the reference measured in the same run (fswatch, else
inotifywait)."""

from __future__ import annotations

from typing import Any

REFERENCES = ("fswatch", "inotifywait")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != 0 and abs(value) < 0.1:
            return f"{value:.3f}"
        return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                for i, (c, w) in enumerate(zip(r, widths, strict=True))) + " |" for r in rows]
    return "\n".join(lines)


def workload_table(title: str, key: str, per_peer: dict[str, dict[str, Any]]) -> str:
    measured = {p: m for p, m in per_peer.items() if "error" not in m}
    keys: list[str] = []
    for metrics in measured.values():
        keys += [k for k in metrics if k not in keys]
    ref = next((r for r in REFERENCES if isinstance(measured.get(r, {}).get(key), int | float)), None)
    ref_value = measured[ref][key] if ref else None
    header = ["peer", *keys] + ([f"{key} ÷ {ref}"] if ref else [])
    rows = []
    for peer, metrics in per_peer.items():
        if "error" in metrics:
            rows.append([peer, f"failed: {metrics['error'][:70]}"] + [""] * (len(header) - 2))
            continue
        row = [peer] + [_cell(metrics.get(k)) for k in keys]
        if ref:
            value = metrics.get(key)
            ok = isinstance(value, int | float) and ref_value
            row.append(f"{value / ref_value:.2f}x" if ok else "-")  # type: ignore[operator]
        rows.append(row)
    return f"### {title}\n\n" + _markdown(header, rows)


def targets_table(rows: list[dict[str, Any]]) -> str:
    body = [[r["target"], _cell(r["value"]), _cell(r["limit"]), r["verdict"]] for r in rows]
    return "### fswatch targets\n\n" + _markdown(["target", "fswatch", "limit", "verdict"], body)
