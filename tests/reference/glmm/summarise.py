"""Print the reference numbers stored in *_reference.json as Markdown tables (for README.md).

Usage (from the repository root):  python tests/reference/glmm/summarise.py
Reads only the stored JSON files; needs neither R nor nbdid.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    for problem in ("seeds", "epilepsy", "gaussian", "gaussian_marginal"):
        path = HERE / f"{problem}_reference.json"
        if not path.is_file():  # gaussian_marginal: written by fit_gaussian_marginal.R
            continue
        ref = json.loads(path.read_text())
        print(f"\n### {problem}\n")
        for name, fit in ref["fits"].items():
            d = fit.get("diagnostics")
            head = f"**{name}** ({fit['engine']}"
            if d:
                head += (f"; {fit['seconds']:.0f} s; R-hat max {d['rhat_max']:.4f}, bulk ESS min "
                         f"{d['ess_bulk_min']:.0f}, divergences {d['divergences']}, "
                         f"MCSE/sd max {d['mcse_mean_over_sd_max']:.3f}")
            else:
                head += f"; {fit['method']}; {fit['seconds']:.2f} s"
            print(head + ")\n")
            if d:
                print("| parameter | mean | sd | q2.5 | q97.5 | ESS bulk | MCSE/sd |")
                print("|---|---|---|---|---|---|---|")
                for p, x in fit["parameters"].items():
                    print(f"| {p} | {x['mean']:.4f} | {x['sd']:.4f} | {x['q2.5']:.4f} | "
                          f"{x['q97.5']:.4f} | {x['ess_bulk']:.0f} | {x['mcse_mean_over_sd']:.3f} |")
            else:
                print("| parameter | estimate | se |")
                print("|---|---|---|")
                for p, x in fit["parameters"].items():
                    se = "" if x["se"] is None else f"{x['se']:.4f}"
                    print(f"| {p} | {x['estimate']:.4f} | {se} |")
            print()
        if "two_sample" in ref:
            t = ref["two_sample"]
            print(f"two-sample on per-unit changes: estimate {t['estimate']:.5f}, Welch SE "
                  f"{t['se_welch']:.5f} (df {t['df_welch']:.1f}), pooled SE {t['se_pooled']:.5f} "
                  f"(df {t['df_pooled']}), ratio {t['ratio_pooled_over_welch']:.3f}")


if __name__ == "__main__":
    main()
