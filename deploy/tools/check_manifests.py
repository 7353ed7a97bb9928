#!/usr/bin/env python3
"""Checks the rendered manifests of an overlay (`kubectl kustomize` output)
for the mistakes kustomize itself lets through: flags the binaries do not
have, ports that do not line up (listen flag, containerPort, gRPC probes,
Service, scrape annotation, worker --coordinator), references to missing
Secrets/ConfigMaps/PVCs/keys, unresolved $(VAR)s, config roots that are not
on the volume both coordinator and workers mount, grace periods shorter than
the configured drain or lease, selectors that select nothing, and the
device/GPU settings the overlay promises.

  kubectl kustomize deploy/overlays/gpu | check_manifests.py --overlay gpu --repo .
Exit status 0 when clean, 1 with one line per problem.
"""
import argparse
import os
import pathlib
import re
import sys

import yaml

problems = []


def problem(msg):
    problems.append(msg)


def parse_flags(source):
    """Flag names a CLI11 program registers (add_option / add_flag)."""
    names = set()
    for m in re.finditer(r'add_(?:option|flag)\(\s*"([^"]+)"', source):
        for n in m.group(1).split(","):
            if n.startswith("--"):
                names.add(n)
    return names


def parse_args(args):
    out = {}
    for a in args:
        if not a.startswith("--"):
            continue
        k, _, v = a.partition("=")
        out[k] = v
    return out


def port_of(addr):
    m = re.fullmatch(r".*:(\d+)", addr or "")
    return int(m.group(1)) if m else None


def proto_fields(proto_text, message):
    m = re.search(r"message\s+" + message + r"\s*\{(.*?)\n\}", proto_text, re.S)
    if not m:
        return {}
    fields = {}
    for fm in re.finditer(r"^\s*(repeated\s+)?(\w+)\s+(\w+)\s*=\s*\d+;", m.group(1), re.M):
        fields[fm.group(3)] = fm.group(2)
    return fields


def parse_textproto(text, proto_text):
    """Top-level scalar fields of a CoordinatorConfig text proto; checks field
    names (CoordinatorConfig, and TlsConfig inside tls { })."""
    text = re.sub(r"#.*", "", text)
    top = proto_fields(proto_text, "CoordinatorConfig")
    tls = proto_fields(proto_text, "TlsConfig")
    values = {}
    depth_fields = [top]
    for m in re.finditer(r'(\w+)\s*(:\s*("(?:[^"\\]|\\.)*"|[^\s{}]+)|\{)|\}', text):
        if m.group(0) == "}":
            if len(depth_fields) > 1:
                depth_fields.pop()
            continue
        name = m.group(1)
        fields = depth_fields[-1]
        if name not in fields:
            problem(f"coordinator config: unknown field {name!r}")
        if m.group(2) == "{":
            depth_fields.append(tls if name == "tls" else {})
        elif len(depth_fields) == 1:
            raw = m.group(3)
            value = raw[1:-1] if raw.startswith('"') else raw
            values.setdefault(name, []).append(value)
    return values


def pod_spec(obj):
    return obj["spec"]["template"]["spec"]


def pod_labels(obj):
    return obj["spec"]["template"]["metadata"].get("labels", {})


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def container(obj, name):
    for c in pod_spec(obj).get("containers", []):
        if c["name"] == name:
            return c
    problem(f"{obj['kind']}/{obj['metadata']['name']}: no container {name!r}")
    return {"name": name, "args": [], "env": [], "ports": [], "volumeMounts": []}


def env_of(c):
    return {e["name"]: e for e in c.get("env", [])}


def mount_volume(obj, c, path):
    """(mountPath, volume) of the mount that holds `path`, deepest first."""
    vols = {v["name"]: v for v in pod_spec(obj).get("volumes", [])}
    for t in obj["spec"].get("volumeClaimTemplates", []):
        vols[t["metadata"]["name"]] = {"name": t["metadata"]["name"], "claimTemplate": True}
    best = None
    for m in c.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best[0]):
                best = (mp, vols.get(m["name"], {}), m)
    return best


def check_refs(objs, by_kind):
    secrets = {o["metadata"]["name"]: o for o in by_kind.get("Secret", [])}
    configmaps = {o["metadata"]["name"]: o for o in by_kind.get("ConfigMap", [])}
    pvcs = {o["metadata"]["name"] for o in by_kind.get("PersistentVolumeClaim", [])}
    for o in objs:
        if o["kind"] not in ("Deployment", "StatefulSet"):
            continue
        where = f"{o['kind']}/{o['metadata']['name']}"
        spec = pod_spec(o)
        for v in spec.get("volumes", []):
            if "configMap" in v and v["configMap"]["name"] not in configmaps:
                problem(f"{where}: volume {v['name']} names a missing ConfigMap")
            if "secret" in v and v["secret"]["secretName"] not in secrets:
                problem(f"{where}: volume {v['name']} names a missing Secret")
            if "persistentVolumeClaim" in v and v["persistentVolumeClaim"]["claimName"] not in pvcs:
                problem(f"{where}: volume {v['name']} names a missing PVC")
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            env = env_of(c)
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    s = secrets.get(ref["name"])
                    if s is None:
                        problem(f"{where}/{c['name']}: env {e['name']} names a missing Secret")
                    elif ref["key"] not in (s.get("data") or {}) | (s.get("stringData") or {}):
                        problem(f"{where}/{c['name']}: Secret {ref['name']} has no key {ref['key']}")
            for a in c.get("command", []) + c.get("args", []):
                for var in re.findall(r"\$\((\w+)\)", a):
                    if var not in env:
                        problem(f"{where}/{c['name']}: {a!r} uses $({var}), which is not in env")
            sc = c.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False:
                problem(f"{where}/{c['name']}: allowPrivilegeEscalation is not false")
            if "image" not in c or c["image"] in ("vptq", "vptq-cuda") or ":" not in c["image"]:
                problem(f"{where}/{c['name']}: image {c.get('image')!r} is not mapped to a "
                        "real, tagged image")


def resolve(value, env):
    return re.sub(r"\$\((\w+)\)", lambda m: str(env.get(m.group(1), {}).get("value", m.group(0))),
                  value)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--overlay", required=True, help="cpu | gpu | other (no device checks)")
    ap.add_argument("--repo", required=True)
    ap.add_argument("manifests", nargs="?", default="-")
    args = ap.parse_args()
    repo = pathlib.Path(args.repo)
    text = sys.stdin.read() if args.manifests == "-" else pathlib.Path(args.manifests).read_text()
    objs = [o for o in yaml.safe_load_all(text) if o]
    by_kind = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    named = {(o["kind"], o["metadata"]["name"]): o for o in objs}

    # Namespace: one, declared.
    namespaces = {o["metadata"].get("namespace") for o in objs if o["kind"] != "Namespace"}
    if len(namespaces) != 1 or None in namespaces:
        problem(f"objects are spread over namespaces {namespaces}")
    elif ("Namespace", next(iter(namespaces))) not in named:
        problem(f"namespace {namespaces} is not declared")

    sts = named.get(("StatefulSet", "vptq-coordinator"))
    dep = named.get(("Deployment", "vptq-worker"))
    if sts is None or dep is None:
        problem("StatefulSet/vptq-coordinator or Deployment/vptq-worker missing")
        return report()
    check_refs(objs, by_kind)

    # Flags exist in the binaries.
    coord_flags = parse_flags((repo / "coordinator/coordinator_main.cc").read_text())
    worker_mains = sorted((repo / "worker").glob("*main*.cc"))
    worker_flags = None
    if worker_mains:
        worker_flags = set()
        for p in worker_mains:
            worker_flags |= parse_flags(p.read_text())
    else:
        print("check_manifests: note: no worker/*main*.cc yet; worker flags not checked")
    cc = container(sts, "coordinator")
    wc = container(dep, "worker")
    cargs = parse_args(cc.get("args", []))
    wargs = parse_args(wc.get("args", []))
    for flag in cargs:
        if flag not in coord_flags:
            problem(f"coordinator: flag {flag} is not one of vptq-coordinator's {sorted(coord_flags)}")
    if worker_flags is not None:
        for flag in wargs:
            if flag not in worker_flags:
                problem(f"worker: flag {flag} is not one of vptq-worker's {sorted(worker_flags)}")
    for flag in ("--listen", "--store", "--config", "--metrics_listen"):
        if flag not in cargs:
            problem(f"coordinator: no {flag}")

    # Coordinator: one replica, governing headless Service, ports, probes.
    if sts["spec"].get("replicas", 1) != 1:
        problem("coordinator: replicas must be 1 (single writer of the store)")
    headless = named.get(("Service", sts["spec"].get("serviceName")))
    if headless is None or headless["spec"].get("clusterIP") != "None":
        problem("coordinator: serviceName is not a headless Service")
    ports = {p.get("name"): p["containerPort"] for p in cc.get("ports", [])}
    grpc_port = port_of(cargs.get("--listen"))
    metrics_port = port_of(cargs.get("--metrics_listen"))
    if ports.get("grpc") != grpc_port:
        problem(f"coordinator: containerPort grpc {ports.get('grpc')} != --listen port {grpc_port}")
    if ports.get("metrics") != metrics_port:
        problem(f"coordinator: containerPort metrics {ports.get('metrics')} != --metrics_listen "
                f"port {metrics_port}")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        p = cc.get(probe)
        if not p or "grpc" not in p:
            problem(f"coordinator: no gRPC {probe}")
        elif p["grpc"].get("port") != grpc_port:
            problem(f"coordinator: {probe} port {p['grpc'].get('port')} != gRPC port {grpc_port}")
    for o in (sts, dep):
        ann = o["spec"]["template"]["metadata"].get("annotations", {})
        c = cc if o is sts else wc
        if ann.get("prometheus.io/scrape") == "true":
            cports = {p["containerPort"] for p in c.get("ports", [])}
            if int(ann.get("prometheus.io/port", 0)) not in cports:
                problem(f"{o['kind']}/{o['metadata']['name']}: prometheus.io/port is not a "
                        "containerPort")
    if port_of(wargs.get("--metrics-listen")) not in (None, *[p["containerPort"] for p in wc.get("ports", [])]):
        problem("worker: --metrics-listen port is not a containerPort")

    # The worker reaches the coordinator through a Service that selects it.
    target = wargs.get("--coordinator") or env_of(wc).get("VPTQ_COORDINATOR", {}).get("value")
    host, _, port = (target or "").rpartition(":")
    svc = named.get(("Service", host.split(".")[0]))
    if svc is None:
        problem(f"worker: coordinator address {target!r} is not a Service")
    else:
        if not selects(svc["spec"].get("selector"), pod_labels(sts)):
            problem(f"Service/{svc['metadata']['name']} does not select the coordinator")
        sp = {p["port"]: p for p in svc["spec"]["ports"]}
        if not port.isdigit() or int(port) not in sp:
            problem(f"worker: port {port} is not a port of Service/{svc['metadata']['name']}")
        else:
            tp = sp[int(port)].get("targetPort", int(port))
            if tp not in (grpc_port, "grpc"):
                problem(f"Service/{svc['metadata']['name']}: port {port} does not lead to gRPC")

    # Tokens: the coordinator has both, the worker only its own.
    cenv, wenv = env_of(cc), env_of(wc)
    for name in ("VPTQ_CLIENT_TOKEN", "VPTQ_WORKER_TOKEN"):
        if "secretKeyRef" not in cenv.get(name, {}).get("valueFrom", {}):
            problem(f"coordinator: {name} does not come from a Secret")
    if "secretKeyRef" not in wenv.get("VPTQ_WORKER_TOKEN", {}).get("valueFrom", {}):
        problem("worker: VPTQ_WORKER_TOKEN does not come from a Secret")
    if "VPTQ_CLIENT_TOKEN" in wenv:
        problem("worker: must not get the client token")

    # Config: in a mounted ConfigMap, valid field names, roots on the shared
    # volume of both, grace periods.
    config_path = cargs.get("--config", "")
    mv = mount_volume(sts, cc, config_path)
    config = {}
    if not mv or "configMap" not in mv[1]:
        problem(f"coordinator: --config {config_path} is not on a ConfigMap volume")
    else:
        cm = named.get(("ConfigMap", mv[1]["configMap"]["name"]), {})
        key = os.path.relpath(config_path, mv[0])
        body = (cm.get("data") or {}).get(key)
        if body is None:
            problem(f"coordinator: ConfigMap has no key {key}")
        else:
            config = parse_textproto(body, (repo / "proto/vptq/v1/config.proto").read_text())
    drain = int(config.get("drain_seconds", ["30"])[-1])
    lease = int(config.get("lease_seconds", ["30"])[-1])
    if pod_spec(sts).get("terminationGracePeriodSeconds", 30) <= drain:
        problem(f"coordinator: terminationGracePeriodSeconds <= drain_seconds {drain}")
    if pod_spec(dep).get("terminationGracePeriodSeconds", 30) < lease:
        problem(f"worker: terminationGracePeriodSeconds < lease_seconds {lease}")
    roots = config.get("input_roots", []) + config.get("output_roots", [])
    if not config.get("input_roots"):
        problem("coordinator config: no input_roots")
    for root in roots:
        a, b = mount_volume(sts, cc, root), mount_volume(dep, wc, root)
        claim = lambda m: m and m[1].get("persistentVolumeClaim", {}).get("claimName")
        if not claim(a) or claim(a) != claim(b):
            problem(f"root {root}: not on the same PVC in coordinator and worker")
        elif root in config.get("output_roots", []) and b[2].get("readOnly"):
            problem(f"root {root}: read-only in the worker, which writes output_dir")
    sm = mount_volume(sts, cc, cargs.get("--store", ""))
    if not sm or not sm[1].get("claimTemplate"):
        problem("coordinator: --store is not on a volumeClaimTemplate")

    # Non-root, as the image's user.
    uids = set()
    for df in ("docker/Dockerfile.cpu", "docker/Dockerfile.cuda"):
        for m in re.finditer(r"^USER\s+(\d+)", (repo / df).read_text(), re.M):
            uids.add(int(m.group(1)))
    for o in (sts, dep):
        sc = pod_spec(o).get("securityContext", {})
        if sc.get("runAsNonRoot") is not True or sc.get("runAsUser") not in uids:
            problem(f"{o['kind']}/{o['metadata']['name']}: not running as the images' user {uids}")

    # Selectors select something.
    for np in by_kind.get("NetworkPolicy", []):
        sel = np["spec"]["podSelector"].get("matchLabels", {})
        if not any(selects(sel, pod_labels(o)) for o in (sts, dep)):
            problem(f"NetworkPolicy/{np['metadata']['name']} selects no pod")
    npc = next((n for n in by_kind.get("NetworkPolicy", [])
                if selects(n["spec"]["podSelector"].get("matchLabels"), pod_labels(sts))), None)
    if npc:
        ok = any(any(selects(f.get("podSelector", {}).get("matchLabels"), pod_labels(dep))
                     and "namespaceSelector" not in f for f in rule.get("from", []))
                 and any(p.get("port") == grpc_port for p in rule.get("ports", []))
                 for rule in npc["spec"].get("ingress", []))
        if not ok:
            problem("NetworkPolicy: workers may not reach the coordinator's gRPC port")
    npw = next((n for n in by_kind.get("NetworkPolicy", [])
                if selects(n["spec"]["podSelector"].get("matchLabels"), pod_labels(dep))), None)
    if npw and "Egress" in npw["spec"].get("policyTypes", []):
        ok = any(any(selects(t.get("podSelector", {}).get("matchLabels"), pod_labels(sts))
                     for t in rule.get("to", []))
                 and any(p.get("port") == grpc_port for p in rule.get("ports", []))
                 for rule in npw["spec"].get("egress", []))
        if not ok:
            problem("NetworkPolicy: worker egress to the coordinator's gRPC port is not allowed")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        if not selects(pdb["spec"]["selector"].get("matchLabels"), pod_labels(dep)):
            problem(f"PodDisruptionBudget/{pdb['metadata']['name']} does not select the workers")

    # Devices.
    devices = resolve(wargs.get("--devices", "$(VPTQ_DEVICES)"), wenv).split(",")
    limits = wc.get("resources", {}).get("limits", {})
    gpus = int(limits.get("nvidia.com/gpu", 0))
    if args.overlay == "cpu":
        if devices != ["cpu"] or gpus:
            problem(f"cpu overlay: worker devices {devices}, GPUs {gpus}")
    elif args.overlay == "gpu":
        if not all(re.fullmatch(r"cuda:\d+", d) for d in devices) or len(devices) != gpus:
            problem(f"gpu overlay: worker devices {devices} do not match nvidia.com/gpu {gpus}")
        if "cuda" not in wc.get("image", ""):
            problem(f"gpu overlay: worker image {wc.get('image')!r} is not the CUDA image")
        if not pod_spec(dep).get("tolerations"):
            problem("gpu overlay: no tolerations for GPU nodes")
    return report(f"overlay {args.overlay}: {len(objs)} objects")


def report(what="manifests"):
    for p in problems:
        print(f"check_manifests: {p}")
    print(f"check_manifests: {what}, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
