#!/usr/bin/env python3
"""Checks that the Grafana dashboard and the Prometheus rules use only what the
coordinator exports.

The exported families are read from the registrations in the C++ sources
(`AddCounter|AddGauge|AddHistogram("name", "help", {"label", ...})`). A
histogram exports name_bucket (with `le`), name_sum and name_count, never the
bare name. For every PromQL expression (dashboard targets and template
queries, rule `expr`s) it checks:
  - every metric name is an exported series;
  - selector matchers name labels of that metric, and `=`/`!=` values (and the
    words of simple `a|b` regexes) appear as string literals in the sources;
  - by/without/on/ignoring labels and {{label}} legends name labels of the
    expression's metrics.

  check_metrics.py --source coordinator/coordinator_metrics.cc --source common/metrics.cc \
      --literals-dir coordinator --dashboard d.json --rules r.yaml
Exit status 0 when clean, 1 with one line per problem.
"""
import argparse
import json
import pathlib
import re
import sys

import yaml

# Labels the scrape adds (target labels); allowed in any selector or grouping.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "container", "service", "endpoint"}
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "inf", "nan", "atan2",
}
STRING = r'"(?:[^"\\]|\\.)*"'
REGISTRATION = re.compile(
    r'Add(Counter|Gauge|Histogram)\(\s*(' + STRING + r')\s*,\s*((?:' + STRING + r'\s*)+)'
    r'(?:,\s*\{([^}]*)\})?')


def exported_families(sources):
    """name -> (type, labels) for every registration in `sources`."""
    families = {}
    for path in sources:
        text = pathlib.Path(path).read_text()
        for kind, name, _help, labels in REGISTRATION.findall(text):
            label_names = re.findall(STRING, labels or "")
            families[json.loads(name)] = (kind, {json.loads(l) for l in label_names})
    return families


def exported_series(families):
    """series name -> label names, as they appear on /metrics."""
    series = {}
    for name, (kind, labels) in families.items():
        if kind == "Histogram":
            series[name + "_bucket"] = labels | {"le"}
            series[name + "_sum"] = set(labels)
            series[name + "_count"] = set(labels)
        else:
            series[name] = set(labels)
    return series


def string_literals(directories):
    values = set()
    for d in directories:
        for path in pathlib.Path(d).glob("*.cc"):
            if path.name.endswith("_test.cc"):
                continue
            for lit in re.findall(STRING, path.read_text()):
                try:
                    values.add(json.loads(lit))
                except ValueError:
                    pass
    return values


def strip_grafana_vars(expr):
    return re.sub(r"\$\{?\w+\}?", "VAR", expr)


def check_expr(where, expr, series, literals, problems, legend=None):
    expr = strip_grafana_vars(expr)
    used = []  # metric names in this expression
    # Selectors with braces: name{matchers}.
    for m in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^}]*)\}", expr):
        name, body = m.group(1), m.group(2)
        if name is None or name in KEYWORDS:
            problems.append(f"{where}: selector without a metric name: {m.group(0)!r}")
            continue
        matchers = re.findall(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(' + STRING + ')', body)
        if len(matchers) != len([p for p in body.split(",") if p.strip()]):
            problems.append(f"{where}: cannot read matchers {body!r}")
        for label, op, raw in matchers:
            value = json.loads(raw)
            labels = series.get(name)
            if labels is None:
                continue  # reported below as an unknown metric
            if label not in labels and label not in TARGET_LABELS:
                problems.append(f"{where}: {name} has no label {label!r} (has {sorted(labels)})")
                continue
            if label in TARGET_LABELS or label == "le" or "VAR" in value:
                continue
            words = [value] if op in ("=", "!=") else (
                value.split("|") if re.fullmatch(r"[A-Za-z0-9_|]+", value) else [])
            for w in words:
                if w not in literals:
                    problems.append(f"{where}: {name}{{{label}{op}{raw}}}: {w!r} is not a value "
                                    "the sources ever use")
    # Metric names: identifiers outside strings, braces, ranges and label lists,
    # not function calls, keywords or numbers.
    bare = re.sub(STRING, '""', expr)
    bare = re.sub(r"\{[^}]*\}", "", bare)
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    grouping = []
    for m in re.finditer(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", bare):
        grouping += [l.strip() for l in m.group(2).split(",") if l.strip()]
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    for m in re.finditer(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)\b(\s*\()?", bare):
        ident, call = m.group(1), m.group(2)
        if call or ident in KEYWORDS or ident == "VAR":
            continue
        if re.fullmatch(r"\d.*", ident):
            continue
        used.append(ident)
        if ident not in series:
            hint = ""
            base = re.sub(r"_(bucket|sum|count)$", "", ident)
            if ident in {n[: -len("_bucket")] for n in series if n.endswith("_bucket")}:
                hint = " (a histogram: use _bucket, _sum or _count)"
            elif base != ident:
                hint = " (not a histogram)"
            problems.append(f"{where}: metric {ident!r} is not exported by the coordinator{hint}")
    available = set(TARGET_LABELS)
    for name in used:
        available |= series.get(name, set())
    for label in grouping:
        if label not in available:
            problems.append(f"{where}: grouping label {label!r} is not a label of "
                            f"{sorted(set(used))}")
    if legend:
        for label in re.findall(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", legend):
            if label not in available:
                problems.append(f"{where}: legend label {label!r} is not a label of "
                                f"{sorted(set(used))}")
    if not used:
        problems.append(f"{where}: no metric in {expr!r}")


def dashboard_exprs(dashboard):
    """(where, expr, legend) for every query in the dashboard."""
    out = []

    def walk(panels, prefix):
        for p in panels:
            title = p.get("title", p.get("id"))
            for t in p.get("targets", []):
                if "expr" in t:
                    out.append((f"{prefix}panel {title!r} {t.get('refId')}", t["expr"],
                                t.get("legendFormat")))
            walk(p.get("panels", []), prefix)

    walk(dashboard.get("panels", []), "dashboard ")
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            out.append((f"dashboard variable {v.get('name')!r}", q, None))
    return out


def check_dashboard_shape(dashboard, problems):
    ids = []

    def walk(panels):
        for p in panels:
            ids.append(p.get("id"))
            if p.get("type") != "row":
                ds = p.get("datasource") or {}
                if ds.get("uid") != "${datasource}":
                    problems.append(f"dashboard panel {p.get('title')!r}: datasource is not "
                                    "the ${datasource} variable")
                if not p.get("targets"):
                    problems.append(f"dashboard panel {p.get('title')!r}: no query")
            gp = p.get("gridPos", {})
            if not all(k in gp for k in ("x", "y", "w", "h")) or gp.get("x", 0) + gp.get("w", 0) > 24:
                problems.append(f"dashboard panel {p.get('title')!r}: bad gridPos {gp}")
            walk(p.get("panels", []))

    walk(dashboard.get("panels", []))
    if len(ids) != len(set(ids)):
        problems.append("dashboard: panel ids are not unique")
    for key in ("uid", "title", "panels", "schemaVersion"):
        if key not in dashboard:
            problems.append(f"dashboard: no {key!r}")
    names = {v.get("name") for v in dashboard.get("templating", {}).get("list", [])}
    text = json.dumps(dashboard)
    for var in set(re.findall(r"\$\{?(\w+)\}?", text)):
        if not var.startswith("__") and var not in names:
            problems.append(f"dashboard: variable ${var} is used but not defined")


def rule_exprs(rules, problems):
    out = []
    for g in rules.get("groups") or []:
        for r in g.get("rules") or []:
            name = r.get("alert") or r.get("record")
            if not name or "expr" not in r:
                problems.append(f"rules group {g.get('name')!r}: a rule without a name or expr")
                continue
            if r.get("alert") and "severity" not in (r.get("labels") or {}):
                problems.append(f"rule {name}: no severity label")
            out.append((f"rule {name}", str(r["expr"]), None))
    if not out:
        problems.append("rules: no rules")
    return out


def emit_rules(path, exprs):
    """Dashboard queries as recording rules; range variables become 5m."""
    rules = [{"record": f"dashboard:query{i}",
              "expr": re.sub(r"\$\{?\w+\}?", "5m", e)} for i, e in enumerate(exprs)]
    pathlib.Path(path).write_text(yaml.safe_dump({"groups": [{"name": "dashboard",
                                                               "rules": rules}]}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", action="append", required=True)
    ap.add_argument("--literals-dir", action="append", default=[])
    ap.add_argument("--dashboard", action="append", default=[])
    ap.add_argument("--rules", action="append", default=[])
    ap.add_argument("--emit-rules", help="write the dashboard's queries as a recording-rule "
                    "file (Grafana variables filled in) for `promtool check rules`")
    args = ap.parse_args()

    families = exported_families(args.source)
    problems = []
    if not families:
        problems.append(f"no metric registrations found in {args.source}")
    series = exported_series(families)
    literals = string_literals(args.literals_dir)
    exprs = []
    for path in args.dashboard:
        dashboard = json.loads(pathlib.Path(path).read_text())
        check_dashboard_shape(dashboard, problems)
        exprs += dashboard_exprs(dashboard)
    for path in args.rules:
        exprs += rule_exprs(yaml.safe_load(pathlib.Path(path).read_text()), problems)
    for where, expr, legend in exprs:
        check_expr(where, expr, series, literals, problems, legend)
    if args.emit_rules:
        emit_rules(args.emit_rules, [e for w, e, _ in exprs if w.startswith("dashboard")])
    used_families = set()
    for _, expr, _ in exprs:
        for name in families:
            if re.search(r"\b" + re.escape(name) + r"(_bucket|_sum|_count)?\b", expr):
                used_families.add(name)
    for p in problems:
        print(f"check_metrics: {p}")
    print(f"check_metrics: {len(exprs)} expressions, {len(used_families)}/{len(families)} "
          f"exported families used, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
