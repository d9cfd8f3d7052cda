"""Report on a folder of finished runs: result tables, scaling-law fits and figures.

    python recipes/report.py runs/cpu_grid
    python recipes/report.py runs/cpu_grid runs/cpu_budget runs/cpu_data --out docs/cpu_grid
    python recipes/report.py runs/cpu_grid --measure RR@10 --form power_floor

Reads every ``result.json`` under each RUNS_DIR (recursively), averages runs that differ only in
their seed, and fits the error 1 - MEASURE of each paradigm/loss series (data fraction 1.0, on
SPLIT) against non-embedding parameters (the sizes trained under one budget; a series per budget
when there are several) and against training FLOPs (the compute frontier: each FLOP budget's best
size; under token or step budgets every point), with ``scaling.analysis.fit``. A series with too
few distinct points is reported as refused, with the reason; so is the FLOPs fit of a series whose
points all ran under one FLOP budget (their FLOPs differ only by whole steps). With
``RUNS_DIR/grid.json`` the report also lists the grid's points that have no result yet.

Writes under --out (default RUNS_DIR/report), each file atomically (a temporary sibling, then a
rename): ``report.md`` (progress, tables, fits, figure links), ``fits.json`` (every fit's
parameters, 95% intervals, R^2, points, or its refusal), and the PNGs ``scaling_params.png``,
``scaling_flops.png``, ``curves.png`` (learning curves), ``fraction.png`` (data efficiency),
``variant.png`` (the measure against a numeric axis the tables have no column for, such as
``eval.doc_len``: one line per paradigm/loss/size) and
``supervision.png`` (distilled students against their teachers' report cards); a figure without
data is skipped with a note. The tables and fits are printed too.

Rows name a run's size as the command line does: the grid point's ``size``, else the
``recipes/conf/size`` option with the record's ``model.name`` and ``model.num_layers``
(``smollm2-l1``), else ``<model.name> model.num_layers=<n>`` (``records.rung_name``). An ad-hoc
multirun collects into one folder by naming each run's folder from its overrides:

    python recipes/run.py -m size=smollm2-135m model.num_layers=1,2 'run_dir=runs/mine/${hydra:job.override_dirname}'
    python recipes/report.py runs/mine

A result.json that is not JSON or lacks a needed field is skipped with a warning naming the file
and the field (also listed in report.md); ``--strict`` makes it an error instead. Run folders
without a result.json (failed, stopped or still running) are listed beside the results; when no
RUNS_DIR holds a usable record the report is refused, naming what each folder holds, and nothing is
written. Exit status: 0 when the report was written; 2 for bad arguments, a missing RUNS_DIR, no
usable record, an unreadable grid.json, a measure or split no record holds, or (with --strict) a
bad record.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scaling.analysis import law_report, marks, records, significance, table  # noqa: E402
from scaling.analysis.fit import F_SCALE, FORMS, FitWarning, PowerLawFit, fit_metric  # noqa: E402
from scaling.io import write_atomic, write_json_atomic  # noqa: E402

FIGURES = {"params": "scaling_params.png", "flops": "scaling_flops.png",
           "curves": "curves.png", "fraction": "fraction.png", "supervision": "supervision.png",
           "isoflop": "isoflop.png", "variant": "variant.png"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="report.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Tables, scaling-law fits and figures from the result.json files under RUNS_DIR.",
        epilog="Writes report.md, fits.json and PNG figures under --out, and prints the tables.\n"
               "Fit: error = 1 - MEASURE = A * x^-alpha (power) or A * x^-alpha + E (power_floor),\n"
               f"in log space with a Huber loss (f_scale {F_SCALE}), percentile bootstrap 95% intervals.\n"
               "A bad result.json is skipped with a warning naming it and the field (--strict: an error).")
    parser.add_argument("runs_dirs", metavar="RUNS_DIR", type=Path, nargs="+",
                        help="folder searched recursively for result.json (a grid's folder holds grid.json); "
                             "several folders make one report (e.g. a size grid and a budget grid)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the first RUNS_DIR/report)")
    parser.add_argument("--measure", default="nDCG@10", help="measure to fit and plot (default: nDCG@10)")
    parser.add_argument("--split", default=None,
                        help="dataset/split to fit and plot (default: pycode/test when present, else the "
                             "split most records hold); tables cover every split")
    parser.add_argument("--form", choices=sorted(FORMS), default="power",
                        help="power: A x^-alpha (2 parameters); power_floor: A x^-alpha + E (3 parameters, "
                             "needs a wide range of x). Default: power")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples per fit (default: 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    parser.add_argument("--baseline", default="bm25",
                        help="reference system each table's rows are tested against (paired t-test * and "
                             "randomization test †, Holm-corrected per measure over the table; default: bm25)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level of the marks (default: 0.05)")
    parser.add_argument("--versus", action="append", default=[], metavar="KEY=VALUE",
                        help="also test each point against the point that differs from it only in KEY "
                             "(paradigm, loss, size, budget, teacher, backbone (the size it names), data.fraction, start "
                             "(packaged, or the earlier stages a run started from), or another grid axis of the "
                             "points such as instruction or tasks) set to VALUE, e.g. --versus loss=cl; repeatable")
    parser.add_argument("--strict", action="store_true",
                        help="stop at the first unusable result.json instead of skipping it")
    args = parser.parse_args(argv)
    if args.resamples < 0:
        parser.error("--resamples must be >= 0")
    if not 0 < args.alpha < 1:
        parser.error("--alpha must be in (0, 1)")
    for v in args.versus:
        key, _, value = v.partition("=")
        if not key or not value:
            parser.error(f"--versus {v}: expected KEY=VALUE with KEY one of {', '.join(marks.AXES)} or a grid "
                         "axis of the points (e.g. instruction)")
    return args


def choose_split(points: list[records.Point], wanted: str | None) -> str:
    counts = Counter(s for p in points for s in p.metrics)
    if wanted is not None:
        if wanted not in counts:
            raise SystemExit(f"error: --split {wanted}: no record holds it (found: {', '.join(sorted(counts))})")
        return wanted
    return "pycode/test" if "pycode/test" in counts else counts.most_common(1)[0][0]


def _unfinished(folders: list[tuple[Path, list[str]]], limit: int = 5) -> str:
    """``runs/x/a (config.json, ckpt/; no result.json), ...``: the first ``limit`` and how many more."""
    shown = [f"{path} ({', '.join(held)}; no result.json)" for path, held in folders[:limit]]
    return ", ".join(shown) + (f", and {len(folders) - limit} more" if len(folders) > limit else "")


def nothing_to_report(roots: list[Path], progress: dict[Path, records.Progress]) -> str:
    """Why no report can be made, one sentence per RUNS_DIR: the result.json it holds (none, or
    none usable), the grid's progress, and its run folders without a result (failed, stopped or
    still running), so that an empty report is never mistaken for a finished one."""
    parts = []
    for root in roots:
        found = len(records.find_results(root))
        text = (f"{root} holds {found} result.json, none usable (the warnings above name each file and field)"
                if found else f"{root} holds no result.json")
        if root in progress:
            text += f" (grid {progress[root].experiment}: {progress[root].describe()})"
        unfinished = records.unfinished_runs(root)
        if unfinished:
            n = len(unfinished)
            text += (f"; {n} run folder{'s' if n > 1 else ''} without one (unfinished or failed): "
                     + _unfinished(unfinished))
        elif not found:
            text += " and no run folder (a folder with a run's config.json) below it"
        parts.append(text)
    return ". ".join(parts) + ". Nothing written: a report needs at least one result.json"


def fit_all(series: dict[str, dict[str, list[records.Point]]], split: str, measure: str, form: str,
            resamples: int, seed: int) -> tuple[list[dict], dict[str, dict[str, PowerLawFit]]]:
    """One entry per (series, x): the fit's values, or status "refused" with the reason.
    ``series``: {"params": records.params_series(...), "flops": records.flops_series(...)}."""
    entries, fits = [], {"params": {}, "flops": {}}
    for vs in ("params", "flops"):
        for name, points in sorted(series[vs].items()):
            # through every seed's value, not their mean: the bootstrap then sees the seeds' spread
            x, metric = records.per_seed_xy(points, split, measure, vs)
            entry = {"series": name, "paradigm": points[0].paradigm, "loss": points[0].loss, "vs": vs,
                     "form": form, "points": [{"size": p.size, "budget": p.budget,
                                               "x": p.params if vs == "params" else p.flops,
                                               "metric": p.metrics[split][measure], "per_seed": p.seed_values(split, measure),
                                               "seeds": p.seeds, "runs": len(p.runs)} for p in points]}
            budgets = {p.budget for p in points}
            if vs == "params" and len(budgets) == 1:
                entry["budget"] = points[0].budget
            if vs == "flops" and len(budgets) == 1 and records.is_flop_budget(points[0].budget):
                # every size spent the same compute: one frontier point, no x range to fit
                entry.update(status="refused", n_points=len(points),
                             reason=f"{name} vs flops: every point ran under one FLOP budget "
                                    f"({points[0].budget}); a FLOPs fit needs points at several budgets")
                entries.append(entry)
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FitWarning)  # kept in the fit's warnings and the table
                    fit = fit_metric(x, metric, form=form, series=f"{name} vs {vs}",
                                     resamples=resamples, seed=seed)
            except ValueError as e:
                entry.update(status="refused", reason=str(e), n_points=len(points))
            else:
                entry.update(status="ok", **fit.as_dict())
                entry["series"] = name
                fits[vs][name] = fit
            entries.append(entry)
    return entries, fits


def draw(out: Path, runs, points, series, fits, split, measure, refs) -> tuple[dict[str, Path], list[str]]:
    """The figures written and a note per figure skipped (stale copies of skipped ones are removed)."""
    from scaling.analysis import plots
    drawn, notes = {}, []
    made = {
        "params": plots.scaling_plot(series["params"], fits["params"], "params", split, measure, refs,
                                     out / FIGURES["params"]),
        "flops": plots.scaling_plot(series["flops"], fits["flops"], "flops", split, measure, refs,
                                    out / FIGURES["flops"], background=points),
        "curves": plots.curves_plot(runs, split, measure, out / FIGURES["curves"]),
        "fraction": plots.fraction_plot(points, split, measure, out / FIGURES["fraction"]),
        "supervision": plots.supervision_plot(points, split, measure, out / FIGURES["supervision"], refs),
        "variant": plots.variant_plot(points, split, measure, out / FIGURES["variant"]),
    }
    why = {"params": "no series holds the measure", "flops": "no series holds the measure",
           "curves": "no run has a learning curve (eval.every_n_steps)",
           "fraction": "no point was trained at two or more data fractions",
           "supervision": "no point was distilled from two or more teachers with report cards",
           "variant": "no points differ on one numeric axis the tables have no column for (e.g. eval.doc_len)"}
    for key, path in made.items():
        if path is None:
            (out / FIGURES[key]).unlink(missing_ok=True)
            notes.append(f"{FIGURES[key]} skipped: {why[key]}")
        else:
            drawn[key] = path
    return drawn, notes


def law_sections(points, split: str, args, out: Path, drawn: dict) -> tuple[list[tuple[str, str]], dict]:
    """(titled markdown sections, their fits.json record): backtests, Fang's form on the
    contrastive entropy, the IsoFLOP compute-optimal size (scaling/analysis/law_report.py)."""
    sections, record = [], {}
    text, record["backtests"] = law_report.backtests(points, split, args.measure, args.resamples, args.seed)
    if text:
        sections.append((f"Backtests: {args.measure} on {split}", text))
    text, record["entropy_fits"] = law_report.entropy_fits(points, split, args.resamples, args.seed)
    if text:
        sections.append((f"Contrastive entropy fits (Fang et al.) on {split}", text))
    text, record["isoflop"], path = law_report.isoflop(points, split, args.measure, args.resamples, args.seed, out)
    if text:
        sections.append((f"Compute-optimal size (IsoFLOP): {args.measure} on {split}", text))
    if path is not None:
        drawn["isoflop"] = path
    else:
        (out / FIGURES["isoflop"]).unlink(missing_ok=True)
    return sections, record


def render(roots: list[Path], progress, problems, points, refs, split, measure, args, entries, drawn,
           notes, unfinished=(), ref_pq=None, trust=()) -> str:
    lines = [f"# Report: {', '.join(r.name for r in roots)}", ""]
    n_runs = sum(len(p.runs) for p in points)
    averaged = sum(1 for p in points if len(p.runs) > 1)
    lines.append(f"{n_runs} result records under {', '.join(f'`{r}`' for r in roots)}, {len(points)} points"
                 + (f"; {averaged} point(s) average several runs (seeds or repeats; measures are means)."
                    if averaged else "."))
    if progress or unfinished:
        lines += ["", "## Progress", ""]
    for grid in progress:
        lines += [f"Grid `{grid.experiment}`: {grid.describe()}."]
        if grid.missing:
            lines += ["", "Missing (no result.json):", ""] + [f"- `{n}`" for n in grid.missing] + [""]
    if unfinished:
        lines += ["", "Run folders without result.json (unfinished or failed):", ""]
        lines += [f"- `{path}` ({', '.join(held)})" for path, held in unfinished] + [""]
    if problems:
        lines += ["", "## Skipped records", ""] + [f"- {p}" for p in problems]
    splits = sorted({s for p in points for s in p.metrics}, key=lambda s: (s != split, s))
    for s in splits:
        found = marks.point_marks(points, s, ref_pq or {}, args.baseline, args.alpha)
        lines += ["", f"## Results: {s}", "", table.runs_table(points, s, refs, found)]
        if found:
            lines += ["", significance.legend(args.baseline, args.alpha) + ". A point averaged over seeds is tested "
                      "on its per-query means; the spread column is across seeds (sd; 95% t-interval of the mean "
                      "with three or more)."]
    for v in args.versus:
        key, value = v.split("=", 1)
        rows = marks.versus(points, split, key, value, measure, args.alpha)
        lines += ["", f"## Against {key}={value}: {measure} on {split}", ""]
        lines += [table.versus_table(rows, split, measure, key) if rows else
                  f"No point has a counterpart with {key}={value} and per-query values."]
    supervision = table.supervision_table(points, split, measure)
    if supervision:
        lines += ["", f"## Students and their teachers: {measure} on {split}", "",
                  "Each distilled point beside its teacher's report card (the teacher re-ranking the union of "
                  "BM25's and MiniLM's top candidates, teachers/report.py).", "", supervision]
    if entries:
        lines += ["", f"## Scaling-law fits: {measure} on {split}", "",
                  f"error = 1 - {measure} fitted as "
                  + ("A x^-alpha" if args.form == "power" else "A x^-alpha + E")
                  + f" in log space (Huber loss, f_scale {F_SCALE}); 95% percentile intervals from "
                  f"{args.resamples} bootstrap resamples (seed {args.seed}). A series is one paradigm/loss at "
                  "data fraction 1.0 (and one backbone family and variant where the points span several). Against non-embedding parameters (params) it holds the sizes trained "
                  "under one budget (one series per budget when there are several); against training FLOPs "
                  "(flops) each FLOP budget gives its best size, the compute frontier (under token or step "
                  "budgets every point). A (original units) and every interval are in fits.json.", "", table.fits_table(entries)]
    for title, text in trust:
        lines += ["", f"## {title}", "", text]
    if drawn or notes:
        lines += ["", "## Figures", ""]
        lines += [f"![{key}]({path.name})" for key, path in drawn.items()]
        lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    roots = args.runs_dirs
    for root in roots:
        if not root.is_dir():
            print(f"error: {root}: not a folder", file=sys.stderr)
            return 2
    out = args.out if args.out is not None else roots[0] / "report"
    progress, runs, problems, seen, unfinished, grids = [], [], [], set(), [], {}
    try:
        for root in roots:
            grid = records.grid_progress(root)
            progress += [grid] if grid is not None else []
            grids.update({root: grid} if grid is not None else {})
            found, bad = records.load_runs(root, strict=args.strict)
            runs += [r for r in found if r.path.resolve() not in seen]  # nested folders count once
            seen |= {r.path.resolve() for r in found}
            problems += bad
            listed = {f.resolve() for f, _ in unfinished}
            unfinished += [u for u in records.unfinished_runs(root) if u[0].resolve() not in listed]
    except records.RecordError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for p in problems:
        print(f"warning: skipped {p}", file=sys.stderr)
    if not runs:  # an empty report would read as "nothing to see" rather than "nothing ran"
        print(f"error: {nothing_to_report(roots, grids)}", file=sys.stderr)
        return 2
    for grid in progress:
        print(f"[report] grid {grid.experiment}: {grid.describe()}"
              + (f"; missing: {', '.join(grid.missing)}" if grid.missing else ""))
    if unfinished:
        print(f"[report] {len(unfinished)} run folder(s) without result.json (unfinished or failed): "
              + _unfinished(unfinished))
    points = records.average(runs)
    refs = records.references(runs)
    try:
        split = choose_split(points, args.split)
    except SystemExit as e:
        print(e, file=sys.stderr)
        return 2
    held = {m for p in points for m in p.metrics.get(split, {})}
    if args.measure not in held:
        print(f"error: --measure {args.measure}: not in any record's {split} (found: {', '.join(sorted(held))})",
              file=sys.stderr)
        return 2
    series = {"params": records.params_series(points, split, args.measure),
              "flops": records.flops_series(points, split, args.measure)}
    entries, fits = fit_all(series, split, args.measure, args.form, args.resamples, args.seed)
    drawn, notes = draw(out, runs, points, series, fits, split, args.measure, refs)
    trust, trust_record = law_sections(points, split, args, out, drawn)
    text = render(roots, progress, problems, points, refs, split, args.measure, args, entries, drawn, notes,
                  unfinished, records.reference_per_query(runs), trust)
    write_atomic(out / "report.md", lambda f: f.write(text))
    write_json_atomic(out / "fits.json", {"runs_dirs": [str(r) for r in roots], "measure": args.measure, "split": split,
                                          "form": args.form, "resamples": args.resamples, "seed": args.seed,
                                          "huber_f_scale": F_SCALE, "seeds_averaged": True, "fits": entries,
                                          **trust_record})
    print(text)
    for note in notes:
        print(f"[report] {note}")
    print(f"[report] wrote {out / 'report.md'}, {out / 'fits.json'}"
          + "".join(f", {p}" for p in drawn.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
