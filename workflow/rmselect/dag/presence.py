"""Settings, models, reuse plan, flags and resources of the presence rules
(``workflow/rules/presence.smk``).

Settings (``presence:`` in the config) take their defaults from config/schemas/config.schema.yaml,
the only copy. The presence models are every model of the effective model table
plus ``presence.reference_models`` (models scored for the distributions only, e.g. LLM360
Crystal, which was trained on all of SlimPajama once; they enter the JSD matrix and figures
and the summary, but not the model table).
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping

from rmselect.config import ConfigError, Study, section_settings
from rmselect.dag import common
from rmselect.presence.reuse import reuse_plan

RESERVED_DOMAINS = ("mean", "summary", "jsd", "histograms", "presence")


def settings(study: Study) -> dict[str, Any]:
    """``presence`` section with the schema's defaults, checked against the model table."""
    out = section_settings(study.config, "presence")
    if out["seed"] is None:
        out["seed"] = int(study.config.get("seed", 0))
    for d in out["domains"]:
        if d in RESERVED_DOMAINS:
            raise ConfigError(f"config: field 'presence.domains.{d}': '{d}' is a reserved name")
    for i, ref in enumerate(out["reference_models"]):
        if ref["name"] in study.models:
            raise ConfigError(
                f"config: field 'presence.reference_models[{i}].name': '{ref['name']}' is "
                "already a model of the model table; reference models are scored in addition"
            )
    if out["shard_docs"] is None and out["domains"]:
        out["shard_docs"] = auto_shard_docs(study, out)
    elif out["shard_docs"] is None:
        out["shard_docs"] = int(out["n_docs"])
    return out


def domain_docs(cfg: Mapping[str, Any], domain: str) -> int:
    """Documents sampled and scored for ``domain``: its entry's ``n_docs`` (domains differ
    in per-document spread, so each can be sized for the same half-width), else
    ``presence.n_docs``."""
    return int(cfg["domains"][domain].get("n_docs") or cfg["n_docs"])


def most_docs(cfg: Mapping[str, Any]) -> int:
    """The largest domain's documents (``presence.n_docs`` without domains): it sets the
    shard count that every domain shares."""
    return max([domain_docs(cfg, d) for d in cfg["domains"]] or [int(cfg["n_docs"])])


def scored_limits(study: Study, cfg: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """``{scored model: (params_b, presence runtime limit in seconds)}`` (first attempt;
    models without params_b are left out)."""
    from rmselect.cluster.resources import resources_for

    out = {}
    for name, src in plan(study, cfg).items():
        pb = params_b(study, cfg, name)
        if src != name or not pb:
            continue
        extra = study.model(name).extra if name in study.models else None
        runtime = resources_for("presence", pb, study.config, name, model_extra=extra)["runtime"]
        out[name] = (float(pb), 60.0 * float(runtime))
    return out


def auto_shard_docs(study: Study, cfg: Mapping[str, Any]) -> int:
    """``presence.shard_docs: null``: sized by :func:`rmselect.presence.cost.auto_shard_docs`
    at ``max_tokens`` (+1 prefix) tokens per document, from the config alone (so the shard
    count never changes when data files appear), then evened out over that many shards."""
    from rmselect.plan.cost_model import plan_settings, profiles
    from rmselect.presence.cost import auto_shard_docs as _auto

    pc = plan_settings(study.config)
    prof = profiles(pc)[pc["profile"]]
    n = most_docs(cfg)
    largest = _auto(scored_limits(study, cfg), float(cfg["max_tokens"]) + 1, n, prof)
    shards = -(-n // largest)
    return -(-n // shards)  # the same count of shards, evened out


def references(cfg: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """``presence.reference_models`` by name."""
    return {r["name"]: r for r in cfg["reference_models"]}


def presence_models(study: Study, cfg: Mapping[str, Any]) -> list[str]:
    """The model table's models, then the reference models."""
    return list(study.model_names) + list(references(cfg))


def plan(study: Study, cfg: Mapping[str, Any]) -> dict[str, str]:
    """``{model: model whose scores it gets}`` (family reuse; references score themselves)."""
    out = reuse_plan(study.models, study.model_names, bool(cfg["family_reuse"]))
    out.update({r: r for r in references(cfg)})
    return out


def model_ref(study: Study, cfg: Mapping[str, Any], name: str) -> str:
    """What presence_score.py gets as ``--model`` (a reference model's own source)."""
    refs = references(cfg)
    return str(refs[name]["source"]) if name in refs else study.model_path(name)


def model_files(study: Study, cfg: Mapping[str, Any], name: str) -> list[str]:
    """Files a presence job needs before it loads ``name`` (none for a reference model)."""
    return [] if name in references(cfg) else common.model_files(study, name)


def params_b(study: Study, cfg: Mapping[str, Any], name: str) -> float | None:
    """Parameters (billions) of ``name``, for its job's resources."""
    refs = references(cfg)
    if name in refs:
        return float(refs[name].get("params_b") or 0) or None
    return study.model(name).params_b


def trust_remote_code(study: Study, cfg: Mapping[str, Any], name: str) -> bool:
    """Whether ``name``'s row (or reference entry) opts in to remote code."""
    refs = references(cfg)
    if name in refs:
        return bool(refs[name].get("trust_remote_code", False))
    return study.model(name).trust_remote_code


def domain_files(cfg: Mapping[str, Any], domain: str | None = None) -> list[str]:
    """The local source files of the configured domains (of one domain when named)."""
    items = cfg["domains"].items() if domain is None else [(domain, cfg["domains"][domain])]
    return [e["path"] for _, e in items if "path" in e]


# --------------------------------------------------------------------------- corpus and shards


def corpus_dir(cfg: Mapping[str, Any]) -> str:
    """Where the sampled corpora live (``presence.corpus_dir``; a path shared by studies)."""
    return str(cfg["corpus_dir"]).rstrip("/")


def shard_ids(cfg: Mapping[str, Any]) -> list[str]:
    """Shard numbers (``00000`` …) of every domain: ``ceil(n / shard_docs)`` of them for the
    largest domain's ``n`` (:func:`most_docs`); a smaller domain has as many, smaller shards
    (:func:`domain_shard_docs`), so the rules' file lists do not depend on the domain."""
    from rmselect.presence.corpus import n_shards

    return [f"{k:05d}" for k in range(n_shards(most_docs(cfg), int(cfg["shard_docs"])))]


def domain_shard_docs(cfg: Mapping[str, Any], domain: str) -> int:
    """Documents per shard of ``domain``: its documents evened out over the shared shard
    count (``presence.shard_docs`` for the largest domain)."""
    return min(int(cfg["shard_docs"]), -(-domain_docs(cfg, domain) // len(shard_ids(cfg))))


def corpus_shards(cfg: Mapping[str, Any], domain: str) -> list[str]:
    """The sampled shard files of ``domain`` (the pattern when ``domain`` is a wildcard)."""
    return [f"{corpus_dir(cfg)}/{domain}/part-{k}.parquet" for k in shard_ids(cfg)]


def all_shards(cfg: Mapping[str, Any], root: str, ext: str = "parquet") -> list[str]:
    """``{root}/{domain}/part-NNNNN.{ext}`` for every domain and shard, domain-major."""
    return [f"{root}/{d}/part-{k}.{ext}" for d in cfg["domains"] for k in shard_ids(cfg)]


def shard_args(corpus: Any, scores: Any, meta: Any) -> str:
    """``--corpus C --out S --meta M`` per shard (presence_score.py's repeated flags)."""
    def items(x: Any) -> list[str]:
        return [x] if isinstance(x, str) else list(x)

    flags: list[str] = []
    for c, o, m in zip(items(corpus), items(scores), items(meta), strict=True):
        flags += ["--corpus", c, "--out", o, "--meta", m]
    return common.shell_flags(flags)


def max_chars(cfg: Mapping[str, Any]) -> int:
    """Characters a sampled document keeps: what the scorer reads of it at most
    (``max_tokens`` × ``rmselect.presence.score.CHARS_PER_TOKEN``)."""
    from rmselect.presence.score import CHARS_PER_TOKEN

    return int(cfg["max_tokens"]) * CHARS_PER_TOKEN


def sample_workers(cfg: Mapping[str, Any], domain: str) -> int:
    """Processes (the rule's threads) of ``presence_sample``: ``presence.sample_workers`` for
    a stream, 1 for a local file or a downloaded data set (nothing to read in parallel)."""
    return int(cfg["sample_workers"]) if cfg["domains"][domain].get("streaming") else 1


def sample_flags(cfg: Mapping[str, Any], domain: str) -> str:
    """Command-line flags of presence_sample.py for ``domain`` (``--workers`` comes from the
    rule's threads)."""
    entry = {k: v for k, v in cfg["domains"][domain].items() if k != "n_docs"}
    return common.shell_flags([
        "--domain", domain, "--entry", json.dumps(entry, sort_keys=True),
        "--n-docs", str(domain_docs(cfg, domain)), "--seed", str(cfg["seed"]),
        "--shard-docs", str(domain_shard_docs(cfg, domain)), "--shards", str(len(shard_ids(cfg))),
        "--max-chars", str(max_chars(cfg)), "--covariate-chars", str(covariate_chars(cfg)),
    ])


def covariate_chars(cfg: Mapping[str, Any]) -> int:
    """Characters of each document the sampler's covariate reads (``max_tokens`` ×
    ``rmselect.presence.covariate.CHARS_PER_TOKEN``): about the text the scorer sees."""
    from rmselect.presence.covariate import CHARS_PER_TOKEN

    return int(cfg["max_tokens"]) * CHARS_PER_TOKEN


def sample_runtime(study: Study, cfg: Mapping[str, Any], domain: str) -> int:
    """Minutes for ``presence_sample`` of ``domain``: twice the planned CPU time over its
    workers (``rmselect.presence.cost.sample_cost``), at least 30; 30 when not stated."""
    import math

    from rmselect.plan.cost_model import plan_settings
    from rmselect.presence.cost import sample_cost

    c = sample_cost(domain, cfg["domains"][domain], domain_docs(cfg, domain),
                    plan_settings(study.config))
    wall = c.cpu_s / sample_workers(cfg, domain)
    return 30 if not math.isfinite(wall) else max(30, math.ceil(2 * wall / 60))


def sample_mem_mb(cfg: Mapping[str, Any], domain: str, base_mb: int) -> int:
    """Memory of ``presence_sample``: ``base_mb`` plus twice the sampled text at its longest
    (the domain's documents × :func:`max_chars` bytes: the candidates and the shards being
    written)."""
    import math

    return int(base_mb) + math.ceil(2 * domain_docs(cfg, domain) * max_chars(cfg) / 1e6)


def score_flags(study: Study, cfg: Mapping[str, Any], name: str) -> str:
    """Command-line flags of presence_score.py for model ``name`` (one shard job)."""
    flags = [
        "--model", model_ref(study, cfg, name), "--name", name,
        "--max-tokens", str(cfg["max_tokens"]), "--batch-tokens", str(cfg["batch_tokens"]),
        "--prefix", str(cfg["prefix"]),
    ]
    if trust_remote_code(study, cfg, name):
        flags.append("--trust-remote-code")
    return common.shell_flags(flags)


def offline_env(study: Study, cfg: Mapping[str, Any], name: str) -> str:
    """Environment of a presence scoring job: data sets always offline; the hub offline too
    unless the model itself is a hub id (then only its weights may come from the hub cache
    or the hub; the corpus never does)."""
    hub_model = name in references(cfg) or not model_files(study, cfg, name)
    return "HF_DATASETS_OFFLINE=1" + ("" if hub_model else " HF_HUB_OFFLINE=1")


def resource(study: Study, cfg: Mapping[str, Any], cluster: Any, key: str,
             kind: str = "presence") -> Callable[..., Any]:
    """A Snakemake resource callable for presence jobs (reference models included);
    ``kind="analysis"`` for the CPU jobs that aggregate a model's shards."""
    from rmselect.cluster.resources import resources_for

    def _value(wildcards: Any, attempt: int = 1) -> Any:
        from rmselect.plan.feasibility import projected_minutes

        name = wildcards.model
        extra = study.model(name).extra if name in study.models else None
        # the plan's minutes of one job, here one shard (runtime_from: projection)
        return resources_for(kind, params_b(study, cfg, name), study.config, name,
                             model_extra=extra, cluster=cluster, attempt=attempt,
                             projected_min=projected_minutes(study, cluster, kind, name))[key]

    return _value
