"""Writes docs/BENCHMARKS.md, docs/benchmarks.svg and the README's headline
rows from the JSON lines bench/compare.sh keeps in bench/results/.
Standard library only; nothing in the output is typed by hand.

    python3 bench/report.py bench/results --docs docs --readme README.md
"""

import argparse
import ast
import datetime
import json
import math
import os
import sys

def read_text(path):
    with open(path) as f:
        return f.read()


# Issue 8's targets, checked per row on the LAN comparison.
SPEEDUP_TARGET = 10.0
BYTES_TARGET = 0.5


def load(path):
    """The result lines of a file; where a workload appears more than once (a
    --filter that names one workload also matches longer names that contain
    it, e.g. "mul 1e6" and "mul 1e6 (masked inputs)"), the last line wins, in
    the place of the first. Lines of the net suites differ by link."""
    rows = {}
    if not os.path.exists(path):
        return []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                r = json.loads(line)
                rows[(r.get("name"), r.get("link"))] = r
    return list(rows.values())


def ms(v):
    if v is None:
        return "—"
    if v >= 10_000:
        return f"{v / 1e3:.1f} s"
    if v >= 1000:
        return f"{v / 1e3:.2f} s"
    if v >= 10:
        return f"{v:.0f} ms"
    return f"{v:.2f} ms"


def mb(b):
    if b is None:
        return "—"
    if b >= 1e9:
        return f"{b / 1e9:.2f} GB"
    if b >= 1e6:
        return f"{b / 1e6:.1f} MB"
    if b >= 1e3:
        return f"{b / 1e3:.0f} KB"
    return f"{b:.0f} B"


def err(e):
    return "—" if e is None else f"{e:.1e}"


def ratio(a, b, digits=3):
    if a is None or b in (None, 0):
        return None
    return a / b


def fmt_ratio(r):
    if r is None:
        return "—"
    if r >= 0.1:
        return f"{r:.2f}"
    return f"{r:.3f}"


def per_party_bytes(r):
    """Largest sent+received of one party."""
    v = r.get("bytes_per_party")
    return max(v) if v else None


def spread(r):
    lo, hi = r.get("online_ms_range", [None, None])
    return f"{ms(lo)}–{ms(hi)}" if lo is not None else ""


# Hush rows that run CrypTen's workload with another representation of the
# same secret inputs, and the CrypTen row they are compared with.
SAME_WORKLOAD = {
    "mul 1e6 (masked inputs)": "mul 1e6",
    "matmul 512x512x512 (masked inputs)": "matmul 512x512x512 (both secret)",
    "conv2d 1x64x32x32 * 64x3x3 (masked inputs)": "conv2d 1x64x32x32 * 64x3x3 (secret)",
    "mul 1e6 (masked inputs, local truncation)": "mul 1e6",
    "matmul 512x512x512 (masked inputs, local truncation)": "matmul 512x512x512 (both secret)",
    "conv2d 1x64x32x32 * 64x3x3 (masked inputs, local truncation)": "conv2d 1x64x32x32 * 64x3x3 (secret)",
}


def crypten_workloads():
    """The names of CrypTen's workloads: the keys of OPS and MODELS in
    bench/crypten/bench.py, read from its source (importing it is not
    needed, and this script keeps to the standard library)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "crypten", "bench.py")
    names = set()
    for node in ast.parse(read_text(path)).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) in ("OPS", "MODELS") for t in node.targets):
            names.update(k.value for k in node.value.keys if isinstance(k, ast.Constant))
    return names


def missing_crypten(rows):
    """CrypTen's workloads that a Hush row is to be compared with but that
    have no CrypTen line (not even an error): a partial or broken CrypTen
    run, which would otherwise only shrink the counts of compared rows."""
    expected = crypten_workloads()
    out = []
    for h, c in rows:
        name = SAME_WORKLOAD.get(h["name"], h["name"])
        if c is None and name in expected and name not in out:
            out.append(name)
    return out


def comparison_rows(hush, crypten):
    by_name = {r["name"]: r for r in crypten}
    out = []
    for h in hush:
        c = by_name.get(h["name"]) or by_name.get(SAME_WORKLOAD.get(h["name"]))
        out.append((h, c))
    return out


def with_entry(h):
    """Row `h` of a product of two inputs entered masked (SAME_WORKLOAD),
    with the entry counted as part of the query: CrypTen's workload is one
    product of two fresh inputs, and CrypTen's own sharing of a fresh input
    sends nothing (each party's share comes from a pairwise PRG), so the
    entry's bytes, rounds and time are added to the product's. None for
    other rows (a layer's weights are masked once for every query of a
    session). The entry's time includes drawing its masks from the owner's
    seed, which is input-independent: an upper bound."""
    st = h.get("setup")
    if h["name"] not in SAME_WORKLOAD or not st:
        return None
    # Two parties: what one sends, the other receives.
    entry_bytes = sum(st.get("bytes_sent_per_party") or [0])
    return dict(h, online_ms_median=h["online_ms_median"] + st["ms"],
                bytes_per_party=[b + entry_bytes for b in h.get("bytes_per_party") or [0]],
                rounds=h.get("rounds", 0) + st.get("rounds", 0))


def marks(ok):
    return " ".join(("✓" if o else "✗") + k for o, k in zip(ok, ["10× time", "rounds", "½ bytes"]))


def setup_lines(rows):
    """The one-time setups of rows that have one, which the table leaves out;
    for inputs entered masked, the row again with its entry counted."""
    with_setup = [(h, c) for h, c in rows if h.get("setup")]
    if not with_setup:
        return []
    out = ["Rows with a one-time setup, left out of the table (masking the weights or the inputs once: the owner "
           "sends `E = W − A`). A layer's weights are masked once for all the queries of a session; an input entered "
           "masked is entered once for each fresh input, so for the *masked inputs* rows the product is also given "
           "with its entry counted (time including drawing the masks, an upper bound; bytes per party; rounds), "
           "against CrypTen's product of two fresh inputs, whose entry sends nothing:", ""]
    for h, c in with_setup:
        st = h["setup"]
        sent = st.get("bytes_sent_per_party") or [0]
        line = (f"- {h['name']}: {ms(st['ms'])}, {mb(sum(sent))} sent in all ("
                + ", ".join(f"party {i}: {mb(b)}" for i, b in enumerate(sent)) + ")")
        e = with_entry(h)
        if e is not None and c is not None and "error" not in c:
            line += (f"; with the entry: {ms(e['online_ms_median'])} "
                     f"({fmt_ratio(ratio(e['online_ms_median'], c['online_ms_median']))} of CrypTen's), "
                     f"{e['rounds']} / {c.get('rounds')} rounds, {mb(per_party_bytes(e))} per party "
                     f"({fmt_ratio(ratio(per_party_bytes(e), per_party_bytes(c)))}): {marks(targets(e, c))}")
        out.append(line)
    return out + [""]


def targets(h, c):
    """Issue 8's three targets for Hush row `h` against CrypTen row `c`:
    [10× time, rounds, ½ bytes], each True or False."""
    t_on = ratio(h.get("online_ms_median"), c.get("online_ms_median"))
    b_r = ratio(per_party_bytes(h), per_party_bytes(c))
    return [
        t_on is not None and t_on <= 1 / SPEEDUP_TARGET,
        h.get("rounds", 0) <= c.get("rounds", 0),
        b_r is not None and b_r <= BYTES_TARGET,
    ]


def workload_summary(rows, count_entry=False):
    """CrypTen's workloads, each once: whether one of the Hush rows compared
    with it (a workload can have two: private inputs entered masked, or
    operands that are already additive shares) meets all three targets,
    with the masked rows' entry counted when `count_entry`.
    Returns (met, total, names of the workloads no Hush row meets)."""
    groups = {}
    for h, c in rows:
        if c is None or "error" in c:
            continue
        if count_entry:
            h = with_entry(h) or h
        groups.setdefault(c["name"], []).append(all(targets(h, c)))
    missed = [name for name, oks in groups.items() if not any(oks)]
    return len(groups) - len(missed), len(groups), missed


def comparison_table(rows):
    lines = [
        "| workload | Hush online (range) | Hush offline | CrypTen | time Hush/CrypTen (online; with offline) | rounds Hush / CrypTen | bytes per party Hush / CrypTen (ratio) | peak memory Hush / CrypTen | max error Hush / CrypTen | targets |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    met = total = 0
    for h, c in rows:
        on, off = h.get("online_ms_median"), h.get("offline_ms_median") or 0.0
        hb = per_party_bytes(h)
        hp = h.get("peak_memory_bytes")
        if c is None or "error" in c:
            why = "not in CrypTen's run" if c is None else c["error"].split("|")[-2 if "|" in c["error"] else -1].strip()
            lines.append(
                f"| {h['name']} | {ms(on)} ({spread(h)}) | {ms(off)} | {why} | — | {h.get('rounds')} / — | {mb(hb)} / — | {mb(hp)} / — | {err(h.get('max_abs_error'))} / — | — |"
            )
            continue
        con = c.get("online_ms_median")
        t_on, t_all = ratio(on, con), ratio(on + off, con)
        cb = per_party_bytes(c)
        b_r = ratio(hb, cb)
        ok = targets(h, c)
        total += 1
        met += all(ok)
        lines.append(
            f"| {h['name']} | {ms(on)} ({spread(h)}) | {ms(off)} | {ms(con)} | {fmt_ratio(t_on)}; {fmt_ratio(t_all)} | {h.get('rounds')} / {c.get('rounds')} | {mb(hb)} / {mb(cb)} ({fmt_ratio(b_r)}) | {mb(hp)} / {mb(c.get('peak_memory_bytes'))} | {err(h.get('max_abs_error'))} / {err(c.get('max_abs_error'))} | {marks(ok)} |"
        )
    return lines, met, total


def svg_chart(rows, title):
    """Horizontal bars, log scale: Hush online, Hush online + offline, CrypTen."""
    rows = [(h, c) for h, c in rows if c is not None and "error" not in c]
    if not rows:
        return None
    values = []
    for h, c in rows:
        on = h["online_ms_median"]
        values += [on, on + (h.get("offline_ms_median") or 0), c["online_ms_median"]]
    lo = 10 ** math.floor(math.log10(max(min(values), 1e-3)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    left, width, bar, gap = 300, 560, 9, 12
    height = 60 + len(rows) * (3 * bar + gap) + 40

    def x(v):
        return left + width * (math.log10(max(v, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    colors = [("Hush online", "#2b7bb9"), ("Hush online + offline", "#9cc6e6"), ("CrypTen 0.4.1 (TTP)", "#d9822b")]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 40}" height="{height}" font-family="sans-serif" font-size="11">',
        f'<rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="18" font-size="14" font-weight="bold">{title}</text>',
    ]
    for i, (label, color) in enumerate(colors):
        out.append(f'<rect x="{left + i * 190}" y="28" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{left + i * 190 + 14}" y="37">{label}</text>')
    top = 50
    d = lo
    while d <= hi * 1.001:
        xx = x(d)
        out.append(f'<line x1="{xx:.1f}" y1="{top}" x2="{xx:.1f}" y2="{height - 30}" stroke="#ddd"/>')
        out.append(f'<text x="{xx:.1f}" y="{height - 16}" text-anchor="middle">{ms(d)}</text>')
        d *= 10
    y = top + 6
    for h, c in rows:
        on = h["online_ms_median"]
        vals = [on, on + (h.get("offline_ms_median") or 0), c["online_ms_median"]]
        name = h["name"].replace("&", "&amp;").replace("<", "&lt;")
        out.append(f'<text x="{left - 6}" y="{y + 1.5 * bar + 4}" text-anchor="end">{name}</text>')
        for v, (_, color) in zip(vals, colors):
            out.append(f'<rect x="{left}" y="{y}" width="{max(x(v) - left, 1):.1f}" height="{bar - 1}" fill="{color}"/>')
            y += bar
        y += gap
    out.append(f'<text x="{left}" y="{height - 2}">wall time per query, log scale (median)</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def net_tables(net_ops, net_models, e2e):
    lines = []
    rows = net_ops + net_models
    if rows:
        links = []
        for r in rows:
            if r.get("link") not in links:
                links.append(r.get("link"))
        names = []
        for r in rows:
            if r["name"] not in names:
                names.append(r["name"])
        lines += [
            "| workload | " + " | ".join(f"{l}: online (rounds, bytes per party)" for l in links) + " |",
            "| --- | " + " | ".join("---" for _ in links) + " |",
        ]
        for n in names:
            cells = []
            for l in links:
                r = next((r for r in rows if r["name"] == n and r.get("link") == l), None)
                cells.append(
                    "—" if r is None else f"{ms(r['online_ms_median'])} ({r['rounds']}, {mb(per_party_bytes(r))})"
                )
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    if e2e:
        lines += [
            "",
            "The product end to end (`hush dealer` + `hush serve` on one side, `hush infer` on the other; the dealer beside the server):",
            "",
            "| model | link | shaping | connect + weight setup | inference (median) | end to end (first answer) | online rounds | online bytes each way |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in e2e:
            link = r["link"] if r["rtt_ms"] == 0 else f"{r['link']} ({r['rtt_ms']:.0f} ms RTT, {r['rate_mbit']:.0f} Mbit/s)"
            lines.append(
                f"| {r['name'].split(' end to end')[0]} | {link} | {r['shaping']} | {r['connect_and_setup_s']:.2f} s | {r['inference_s_median']:.2f} s | {r['end_to_end_s']:.2f} s | {r['online']['rounds']} | {mb(r['online']['bytes_sent'])} |"
            )
    return lines


def reps_of(rows):
    """The repetition counts of `rows`, largest first ("5 or 3")."""
    counts = sorted({r["reps"] for r in rows if r.get("reps")}, reverse=True)
    return " or ".join(str(c) for c in counts) or "?"


def replace_between(text, marker, body):
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    i, j = text.find(start), text.find(end)
    if i < 0 or j < 0:
        raise SystemExit(f"README has no {start} … {end} markers")
    return text[: i + len(start)] + "\n" + body + "\n" + text[j:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--docs", required=True)
    ap.add_argument("--readme")
    a = ap.parse_args()
    R = lambda n: load(os.path.join(a.results, n))
    hush_ops, hush_models = R("hush-ops.jsonl"), R("hush-models.jsonl")
    cr_ops, cr_models = R("crypten-ops.jsonl"), R("crypten-models.jsonl")
    net_ops, net_models, e2e = R("net-ops.jsonl"), R("net-models.jsonl"), R("net-e2e.jsonl")
    if not hush_ops and not hush_models:
        sys.exit(f"no Hush results in {a.results}")
    machine = {}
    mpath = os.path.join(a.results, "machine.json")
    if os.path.exists(mpath):
        machine = json.loads(read_text(mpath))
    ops_rows = comparison_rows(hush_ops, cr_ops)
    model_rows = comparison_rows(hush_models, cr_models)
    missing = missing_crypten(ops_rows + model_rows)
    incomplete = []
    if missing:
        print(f"warning: CrypTen's results have no line for {', '.join(missing)}", file=sys.stderr)
        incomplete = [
            f"**Incomplete comparison**: CrypTen's results have no line for {', '.join(missing)} "
            "(a partial or failed CrypTen run); the Hush rows of those workloads are not compared, "
            "and the counts below leave them out.",
            "",
        ]
    ops_table, ops_met, ops_total = comparison_table(ops_rows)
    model_table, mod_met, mod_total = comparison_table(model_rows)
    os.makedirs(a.docs, exist_ok=True)
    chart = svg_chart(ops_rows + model_rows, "Hush vs CrypTen, two parties on one machine")
    if chart:
        with open(os.path.join(a.docs, "benchmarks.svg"), "w") as f:
            f.write(chart)
    # When the run started (machine.json is written first), not when this
    # page was regenerated.
    started = machine.get("date")
    if started is None and os.path.exists(mpath):
        started = datetime.datetime.fromtimestamp(os.path.getmtime(mpath), datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC")
    when = started or "an unknown date"
    cores = machine.get("cores", "?")
    md = [
        "# Benchmarks: Hush and CrypTen side by side",
        "",
        f"Generated by `bench/compare.sh` on {when} ({machine.get('cpu', 'unknown CPU')}, {cores} cores, "
        f"{mb(machine.get('memory_bytes'))} memory, kernel {machine.get('kernel', '?')}, {machine.get('rustc', '')}). "
        "Every figure below is copied by `bench/report.py` from the JSON lines of that run (`bench/results/`); "
        "rerun the script to regenerate this page."
        + (f" CrypTen's figures are kept from the full run of {machine['crypten_date']} on the same machine "
           "(`compare.sh --hush-only` reruns Hush alone)." if machine.get("crypten_date") else ""),
        "",
        "## How it was measured",
        "",
        "- **Same workloads, same inputs, same models.** Ops at the sizes of CrypTen's table; models are the very same "
        "ONNX files (`bench/crypten/models.py`: the repository's digits, LeNet-5 and transformer test models, torchvision "
        "ResNet-18/50 with seeded random weights), fed the same input; each output is compared with onnxruntime's.",
        "- **Hush**: `hush bench --json`, both parties in one process (a thread each, sharing a rayon pool of the "
        "machine's cores), in-process insecure dealer; each workload in a fresh process (peak memory is that process's "
        "high-water mark: both parties and the dealer). *Online* is the query; *offline* is the dealer and both parties "
        "expanding the correlated randomness for one query, one after another (in a deployment the dealer streams it "
        "ahead of time).",
        "- **CrypTen 0.4.1** (torch 2.2.2, CPU): `bench/crypten/bench.py`, two party processes plus its trusted third "
        "party (`TTP` provider), `torch.set_num_threads(1)` per party; each workload in a fresh interpreter. The TTP "
        "makes randomness *during* the query, so CrypTen's time is compared with Hush's online time and with Hush's "
        "online + offline time (both ratios are given). Peak memory is the larger party process's (torch included).",
        "- **Bytes** per party are sent + received. Hush counts payload bytes on its channels; CrypTen counts its own "
        "(elements × 8 for every send and receive of a party, its TTP's messages not included). **Rounds**: Hush counts "
        "sequential message latencies on the critical path; CrypTen counts its communication calls.",
        "- Median of the measured repetitions after one warm-up (range in brackets): "
        f"{reps_of(hush_ops)} for Hush's single operations (they take milliseconds, where this shared machine's noise "
        f"weighs most), {reps_of(cr_ops)} for CrypTen's; {reps_of(hush_models)} for Hush's models, "
        f"{reps_of(cr_models)} for CrypTen's (the fewer for the 224×224 ones). Errors are the largest absolute "
        "difference from float64 (ops) or onnxruntime (models).",
        f"- Targets of issue 8, per row: Hush at least {SPEEDUP_TARGET:.0f}× faster online (ratio ≤ {1 / SPEEDUP_TARGET}), "
        f"no more rounds, at most {BYTES_TARGET:.0%} of the bytes.",
        "",
    ]
    md += incomplete
    if chart:
        md += ["![Hush vs CrypTen](benchmarks.svg)", ""]
    wl_met, wl_total, wl_missed = workload_summary(ops_rows)
    ew_met, _, ew_missed = workload_summary(ops_rows, count_entry=True)
    md += ["## Single operations", ""] + ops_table + [
        "",
        f"{ops_met} of {ops_total} compared rows meet all three targets.",
        "",
        f"**By workload**: {wl_met} of {wl_total} of CrypTen's single-operation workloads have a Hush row that meets "
        "all three targets"
        + (f" (not: {', '.join(wl_missed)})" if wl_missed else "")
        + ". Where Hush has several rows for one CrypTen workload, they are two representations of its secret operands: "
        "*masked inputs* are private inputs entered once in masked form (`E = X − A` public, `A` from the dealer), "
        "which is what CrypTen's benchmark multiplies (fresh inputs); *both secret* / *secret* are operands that are "
        "already additive shares, as intermediate values inside a model are. Hush truncates products exactly, with the "
        "dealer's help (its default); the *local truncation* rows truncate as CrypTen does with two parties: each party "
        "divides its own share (SecureML), no message, an error of one unit in the last place and, with probability "
        "about |z|/2^63 per element, a large one. A Beaver product of additive shares "
        "opens both operands, two words per element each way, so those rows cannot reach half of CrypTen's bytes "
        "(for `mul 1e6` that alone is 32 MB of CrypTen's 40 MB), whatever the truncation; their cost inside whole "
        "networks is in the models below. "
        f"**Counting the entry** of the masked rows' inputs as part of the query (as below the table; CrypTen's "
        f"sharing of a fresh input sends nothing), {ew_met} of {wl_total}"
        + (f" (not: {', '.join(ew_missed)})" if ew_missed else "")
        + ": an input entered masked crosses the wire once, which pays for itself when the input meets several "
        "products, but not in a single product of two fresh inputs.",
        "",
    ] + setup_lines(ops_rows) + [
        "## Models",
        "",
    ] + model_table + [
        "",
        f"{mod_met} of {mod_total} compared rows meet all three targets.",
        "",
    ]
    nt = net_tables(net_ops, net_models, e2e)
    if nt:
        md += [
            "## Between processes: loopback and emulated WANs",
            "",
            "`bench/net.sh`: one party per process (`hush bench --listen/--peer`, an insecure benchmark dealer in party 1), "
            "on loopback, and between two network namespaces joined by a veth pair, shaped to 10 ms RTT / 1 Gbit/s "
            "(wan10) and 40 ms RTT / 100 Mbit/s (wan40) with `tc netem`, or — where the kernel has no `sch_netem`, as on "
            "the machine of this run when the shaping column says so — with a userspace relay on the veth path "
            "(`cargo xtask linkem`: same delay and rate per direction, but TCP ends at the relay, so there is no slow "
            "start over the emulated link).",
            "",
        ] + nt + [""]
    with open(os.path.join(a.docs, "BENCHMARKS.md"), "w") as f:
        f.write("\n".join(md))
    if a.readme:
        head = ["| workload | Hush online | CrypTen 0.4.1 | Hush/CrypTen | rounds Hush / CrypTen | bytes per party Hush / CrypTen |", "| --- | --- | --- | --- | --- | --- |"]
        # Rows that meet the targets and rows that miss them, so the headline
        # shows both; the summary line counts all of them.
        picks = ["mul 1e6", "mul 1e6 (masked inputs)", "mul 1e6 (masked inputs, local truncation)", "relu 1e6", "matmul 512x512x512 (both secret)",
                 "matmul 512x512x512 (masked inputs)", "sqrt 1e5", "softmax 1000x100",
                 "LeNet-5 1x1x28x28",
                 "ResNet-18 1x3x32x32", "ResNet-18 1x3x224x224", "ResNet-50 1x3x224x224"]
        for h, c in ops_rows + model_rows:
            if h["name"] not in picks:
                continue
            ok = c is not None and "error" not in c
            head.append(
                f"| {h['name']} | {ms(h['online_ms_median'])} | {ms(c['online_ms_median']) if ok else '—'} | "
                f"{fmt_ratio(ratio(h['online_ms_median'], c['online_ms_median'])) if ok else '—'} | "
                f"{h['rounds']} / {c['rounds'] if ok else '—'} | {mb(per_party_bytes(h))} / {mb(per_party_bytes(c)) if ok else '—'} |"
            )
        for r in e2e:
            if r["link"] == "wan40":
                head.append(
                    f"| {r['name'].split(' end to end')[0]} end to end over {r['rtt_ms']:.0f} ms RTT / {r['rate_mbit']:.0f} Mbit/s | {r['end_to_end_s']:.1f} s | | | {r['online']['rounds']} | |"
                )
        head += ["", f"Issue 8's targets (10× faster, no more rounds, half the bytes) are met on {mod_met} of "
                 f"{mod_total} models and {ops_met} of {ops_total} single-operation rows; counting each of CrypTen's "
                 f"single-operation workloads once, with its best Hush row, on {wl_met} of {wl_total}"
                 + (f" (not: {', '.join(wl_missed)})" if wl_missed else "")
                 + f", and on {ew_met} of {wl_total}"
                 + (f" (not: {', '.join(ew_missed)})" if ew_missed else "")
                 + " when the entry of the *masked inputs* rows' inputs is counted as part of their query (CrypTen's "
                 "sharing of a fresh input sends nothing); see docs/BENCHMARKS.md."]
        if incomplete:
            head += [""] + incomplete[:1]
        text = read_text(a.readme)
        text = replace_between(text, "bench:headline", "\n".join(head))
        with open(a.readme, "w") as f:
            f.write(text)
    print(f"wrote {os.path.join(a.docs, 'BENCHMARKS.md')}", file=sys.stderr)


if __name__ == "__main__":
    main()
