"""Benchmark of what ``nbdid run`` does besides fitting (not a test).

Run ``python bench/bench_run_outputs.py RUN_FOLDER`` with the folder of an earlier
``nbdid run`` on the default config: its posteriors are replayed (no sampling, the
same numbers: :class:`nbdid.workflow.resume.ReplayCache`), and the run's outputs are
written twice, side by side:

1. *in this process*: :meth:`RunResult.save` draws the 46 figures (PNG, PDF, SVG) and
   the report here, as the Python API does;
2. *with a figure worker*: as ``nbdid run`` does, a
   :class:`nbdid.figures.render.FigureRenderer` draws each figure as soon as its fit is
   replayed (here the fits take no time, so this measures the sharing of the drawing
   between the worker and this process at save time, not the overlap with real fits).

Printed: wall and CPU seconds (this process and its workers) of each, and the load
average (the machine may be shared); the two folders must hold the same files, byte
for byte, but for the time stamps of the report and the posteriors.  The overlap with real fits is
measured by timing ``nbdid run`` itself.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import tempfile
import time
from pathlib import Path


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _files(root: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            if p.suffix == ".nc":  # the posteriors carry their creation time
                continue
            data = p.read_bytes()
            if p.suffix in (".md", ".html"):  # the report's time, folder and file hashes
                data = re.sub(rb"(Report made|Run folder)[^\n]*|[0-9a-f]{64}", b"", data)
            out[str(p.relative_to(root))] = data
    return out


def main() -> None:
    # imported here: a benchmark script; the package loads after the arguments are read
    import arviz as az

    from nbdid.config import load_config
    from nbdid.figures.render import FigureRenderer
    from nbdid.workflow.report import report_pngs
    from nbdid.workflow.resume import ReplayCache
    from nbdid.workflow.run import load_run_panel, run

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_folder", type=Path, help="folder of an earlier nbdid run")
    ap.add_argument("--out", type=Path, default=None, help="where to write (default: a temporary folder)")
    args = ap.parse_args()
    cfg = load_config(None)
    panel, source = load_run_panel(cfg)

    class Replay:  # the part of a RunCheckpoint that run() uses
        def __init__(self) -> None:
            self.cache = ReplayCache({k: az.from_netcdf(args.run_folder / "posteriors" / f"{k}.nc")
                                      for k in cfg.indicators})
            self.reused: list[str] = []
            self.finished: list[str] = []

        def saved(self, res: object) -> None:
            pass

    root = args.out or Path(tempfile.mkdtemp(prefix="nbdid-bench-"))
    results = {}
    for label, workers in (("in this process", None), ("with a figure worker", 1)):
        out = root / ("here" if workers is None else "worker")
        shutil.rmtree(out, ignore_errors=True)
        c0, w0 = _cpu(), time.perf_counter()
        renderer = FigureRenderer(workers, also=report_pngs) if workers else None
        try:
            res = run(panel, config=cfg, source=source, checkpoint=Replay(), validated=True,
                      renderer=renderer)
            w1 = time.perf_counter()
            # the same provenance for both (wall times differ)
            res.info.update(command="nbdid run (bench)", seconds=0.0, timing={})
            res.save(out)
        finally:
            if renderer is not None:
                renderer.close()
        w2, c2 = time.perf_counter(), _cpu()
        results[label] = out
        print(f"{label:22s} replay {w1 - w0:5.1f} s  save {w2 - w1:5.1f} s  total {w2 - w0:5.1f} s  "
              f"CPU {c2 - c0:5.1f} s  load {os.getloadavg()[0]:.2f}")
    a, b = (_files(p) for p in results.values())
    differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    print("same files, byte for byte" if not differ else f"files that differ: {differ}")
    if args.out is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
