# Regenerates the synthetic 12-model analysis fixture (run from the repository root).
import numpy as np, csv
rng = np.random.default_rng(7)
fams = [("fama", "PubA"), ("famb", "PubB"), ("famc", "PubC"), ("famd", "PubD")]
sizes = [0.5, 2.0, 7.0]
rows = []
for f, p in fams:
    for s in sizes:
        rows.append((f"{f}-{s:g}b", f, p, s))
with open("tests/data/analysis/models.tsv", "w") as fh:
    fh.write("name\tsource\tpublisher\tfamily\tparams_b\ttokens_t\treleased\tstage\tparent\ttrust_remote_code\tchat_template\n")
    for n, f, p, s in rows:
        fh.write(f"{n}\tfixture/{n}\t{p}\t{f}\t{s}\t{2 + s:g}\t2024-01\tinstruct\t\tfalse\t\n")
n = len(rows)
quality = np.array([0.3 * i % 1.0 for i in range(n)])
fam_eff = {"fama": 0, "famb": 3, "famc": -2, "famd": 5}
q = np.array([fam_eff[r[1]] + 4 * np.log(r[3]) for r in rows]) + rng.normal(0, 2, n)
feats = {
    "bench_a": 40 + 2.0 * q + rng.normal(0, 1.5, n),
    "bench_b": 30 + 1.0 * q + rng.normal(0, 6, n),
    "bench_noise": rng.uniform(20, 80, n),
    "bench_sparse": 50 + q + rng.normal(0, 2, n),
}
feats["bench_sparse"][3] = np.nan
pres = {"presence_web": -2 + 0.05 * q + rng.normal(0, 0.05, n), "presence_code": rng.normal(-3, 0.3, n)}
with open("tests/data/analysis/features.csv", "w") as fh:
    w = csv.writer(fh)
    cols = list(feats) + ["params_b", "tokens_t"] + list(pres)
    w.writerow(["model"] + cols)
    for i, (nm, f, p, s) in enumerate(rows):
        vals = [feats[c][i] for c in feats] + [s, 2 + s] + [pres[c][i] for c in pres]
        w.writerow([nm] + ["" if np.isnan(v) else f"{v:.4f}" for v in vals])
with open("tests/data/analysis/rm_scores.csv", "w") as fh:
    w = csv.writer(fh)
    secs = ["chat", "chat_hard", "safety", "reasoning"]
    w.writerow(["model", "objective", "benchmark"] + secs + ["score"] + [f"{s}_{b}" for s in secs + ["score"] for b in ("lo", "hi")] + ["source"])
    for obj, off in (("bt", -4.0), ("regression", 0.0)):
        for i, (nm, f, p, s) in enumerate(rows):
            sv = [np.clip(60 + off + q[i] + rng.normal(0, 3), 0, 100) for _ in secs]
            sc = float(np.mean(sv))
            vals = sv + [sc]
            ci = []
            for v in vals:
                ci += [v - 2, v + 2]
            w.writerow([nm, obj, "rewardbench"] + [f"{v:.3f}" for v in vals] + [f"{v:.3f}" for v in ci] + ["imported"])
with open("tests/data/analysis/leaderboard.csv", "w") as fh:
    fh.write("rank,model,base_family\n")
    fams2 = ["llama-3"] * 14 + ["qwen2.5"] * 7 + ["gemma-2"] * 5 + ["mistral"] * 4
    for i, b in enumerate(fams2):
        fh.write(f"{i+1},rm-{i+1},{b}\n")
