"""Figures of the selection analysis: out-of-sample coverage by strategy (first), Figure 6
(in-sample), Figure 5 (coefficients) and 10 (vs filtered features)."""

from __future__ import annotations

from typing import Any

import polars as pl

from rmselect import plotting


def plot_coefficients(summary: dict[str, Any], stem: str) -> None:
    """Figure 5: non-zero coefficients of the refit model per objective."""
    objs = list(summary["objectives"]) or ["(none)"]
    n = max([len(summary["objectives"][o]["coefficients"]) for o in objs
             if o in summary["objectives"]] or [1])
    fig, axes = plotting.figure("double", height=max(1.8, 0.18 * min(n, 25) + 0.9),
                                ncols=len(objs), squeeze=False, layout="constrained")
    for ax, obj in zip(axes[0], objs):
        co = summary["objectives"].get(obj, {}).get("coefficients", [])[:25][::-1]
        ax.barh(range(len(co)), [c["coef"] for c in co],
                color=[plotting.PALETTE[0] if c["coef"] > 0 else plotting.PALETTE[3] for c in co])
        ax.set_yticks(range(len(co)), [c["term"] for c in co])
        ax.axvline(0, color="black", lw=0.6)
        ax.set_xlabel("Coefficient (RM points per SD of term)")
        ax.set_title(f"{obj}: non-zero Elastic Net terms")
    plotting.save(fig, stem)


#: Colours and labels of the strategies in the out-of-sample figure.
STRATEGY_STYLE = {
    "selection_model": (0, "Elastic Net (paper)"),
    "ridge": (2, "ridge, linear"),
    "rank_average": (4, "rank average, top m"),
    "best_single_feature": (1, "best single feature"),
    "size_only": (5, "size only (params_b)"),
}
OUT_OF_SAMPLE = ("nested_cv", "leave_one_lineage_out", "leave_one_family_out")


def plot_selection(cov: pl.DataFrame, stem: str) -> None:
    """Out-of-sample coverage@k of every strategy, one panel per out-of-sample evaluation
    (objectives in rows), with the random line k/n and the bootstrap band of the strategy
    with the best mean coverage (intervals of all: selection_coverage.csv). The report's
    first selection figure; the paper's in-sample Figure 6 is :func:`plot_in_sample`."""
    objs = cov["objective"].unique(maintain_order=True).to_list() or ["(none)"]
    evs = [e for e in OUT_OF_SAMPLE if e in set(cov["evaluation"].to_list())] or ["nested_cv"]
    fig, axes = plotting.figure("double", height=2.2 * len(objs) + 0.4, nrows=len(objs),
                                ncols=len(evs), squeeze=False, sharey=True,
                                layout="constrained")
    for r, obj in enumerate(objs):
        for c, ev in enumerate(evs):
            ax = axes[r][c]
            d = cov.filter((pl.col("objective") == obj) & (pl.col("evaluation") == ev))
            fitted = d.filter(pl.col("predictor") != "random")
            best = (fitted.sort("mean_coverage", descending=True, nulls_last=True)
                    ["predictor"][0] if fitted.height else None)
            for pr, s in d.group_by("predictor", maintain_order=True):
                pr = pr[0]
                s = s.sort("k")
                if pr == "random":
                    ax.plot(s["k"], s["coverage"], color="black", ls="--", lw=1.0,
                            label="random (k/n)")
                    continue
                ci, lab = STRATEGY_STYLE.get(pr, (6, pr))
                color = plotting.PALETTE[ci % 8]
                if pr == best and s["coverage_lo"].null_count() < s.height:
                    ax.fill_between(s["k"], s["coverage_lo"].fill_null(float("nan")),
                                    s["coverage_hi"].fill_null(float("nan")), color=color,
                                    alpha=0.15, lw=0)
                    lab += " (95% bootstrap)"
                ax.plot(s["k"], s["coverage"], marker="o", ms=2, lw=1.3, color=color,
                        label=lab)
            ax.set_ylim(0, 1.05)
            ax.set_xlabel("k (top-k models)")
            if c == 0:
                ax.set_ylabel(f"{obj}: coverage")
            name = {"nested_cv": "nested CV"}.get(ev, ev.replace("_", "-"))
            ax.set_title(f"out of sample: {name}", fontsize=6.5)
            ax.legend(fontsize=4.5)
    plotting.save(fig, stem)


def plot_in_sample(cov: pl.DataFrame, stem: str) -> None:
    """Figure 6 as the paper draws it, labelled in-sample: the Elastic Net refit on all
    models against the best single feature, both scored on the models they were fitted to."""
    plot_comparison(cov.filter(pl.col("evaluation") == "in_sample"), stem,
                    title="IN-SAMPLE (paper Fig. 6; optimistic)")


def plot_comparison(cov: pl.DataFrame, stem: str, extra: pl.DataFrame | None = None,
                    title: str = "") -> None:
    """Figure 6 (selection model vs best single feature) or 10 (vs filtered features)."""
    objs = cov["objective"].unique(maintain_order=True).to_list() or ["(none)"]
    fig, axes = plotting.figure("double", height=2.6, ncols=len(objs), squeeze=False, sharey=True)
    styles = {"in_sample": "-", "nested_cv": "--", "leave_one_lineage_out": ":",
              "leave_one_family_out": "-."}
    for ax, obj in zip(axes[0], objs):
        d = cov.filter(pl.col("objective") == obj)
        i = 0
        for (ev, pr), s in d.group_by(["evaluation", "predictor"], maintain_order=True):
            if extra is not None and pr != "selection_model":
                continue
            s = s.sort("k")
            lab = f"{'model' if pr == 'selection_model' else 'best feature'} ({ev})"
            if pr == "best_single_feature" and ev == "in_sample":
                lab = f"{s['feature'][0]} (in_sample)"
            if extra is not None:  # Figure 10: the model in black over coloured features
                color, lw = plotting.PALETTE[7], 1.8
            else:
                color, lw = plotting.PALETTE[0 if pr == "selection_model" else 1], 1.5
            ax.plot(s["k"], s["coverage"], ls=styles.get(ev, "-"), marker="o", ms=2,
                    color=color, lw=lw, label=lab, zorder=3)
            i += 1
        if extra is not None:
            e = extra.filter(pl.col("objective") == obj)
            for j, feat in enumerate(e["feature"].unique(maintain_order=True).to_list()):
                s = e.filter(pl.col("feature") == feat).sort("k")
                ax.plot(s["k"], s["coverage"], marker=".", ms=2, lw=0.8,
                        color=plotting.PALETTE[j % 7],
                        ls=["-", "--", ":", "-."][(j // 7) % 4], label=feat)
        ax.set_xlabel("k (top-k models)")
        ax.set_ylabel("Coverage (fraction of true top-k)")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{obj}{': ' + title if title else ''}")
        ax.legend(fontsize=5)
    plotting.save(fig, stem)
