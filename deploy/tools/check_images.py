#!/usr/bin/env python3
"""Static checks of docker/Dockerfile.{cpu,cuda} (no Docker engine needed):
  - a `build` and a `runtime` stage; the runtime stage ends as a numeric
    non-root USER and copies and smoke-checks the three binaries;
  - the build stage installs every package scripts/setup.sh installs, but for
    the ones an image does not need (NOT_NEEDED below, with the reason);
  - for each -dev package the build links against, the runtime stage installs
    its shared-library package (read from dpkg on this machine, where
    setup.sh installed them: libgrpc++-dev -> libgrpc++1.51, ...);
  - the two per-Dockerfile ignore files are identical and keep build trees,
    .git and the npm test data out of the context.

  check_images.py --repo .
Exit status 0 when clean, 1 with one line per problem.
"""
import argparse
import pathlib
import re
import shutil
import subprocess
import sys

BINARIES = ("vptq-coordinator", "vptq-worker", "vptqctl", "vptqctl-local")
COMMON_NOT_NEEDED = {
    "git": "the context is copied, not cloned",
    "clang": "fuzzers only",
    "libclang-rt-14-dev": "fuzzers only",
    "libfaiss-dev": "benchmarks only",
    "nodejs": "test data only",
    "python3": "deploy checks only",
    "python3-yaml": "deploy checks only",
    "npm": "test data only",
    "openssl": "the command-line tool; tests make certificates with it",
    "civetweb": "the server program; the build needs libcivetweb-dev",
}
NOT_NEEDED = {
    "cpu": dict(COMMON_NOT_NEEDED),
    "cuda": dict(COMMON_NOT_NEEDED, **{
        "libtorch-dev": "LibTorch with CUDA comes from LIBTORCH_URL",
        "libopenblas-dev": "LibTorch with CUDA bundles its BLAS",
        "libopenblas0-pthread": "LibTorch with CUDA bundles its BLAS",
    }),
}
# Linked only into tests and benchmarks, or header-only.
NOT_AT_RUNTIME = {"libgtest-dev", "libgmock-dev", "googletest", "libbenchmark-dev",
                  "libcli11-dev", "nlohmann-json3-dev"}
IGNORED_PATHS = (".git", "build*", "third_party/npm")

problems = []


def setup_packages(repo):
    text = (repo / "scripts/setup.sh").read_text()
    m = re.search(r"^PACKAGES=\((.*?)^\)", text, re.S | re.M)
    if not m:
        problems.append("scripts/setup.sh: no PACKAGES=( ... ) list")
        return []
    body = re.sub(r"#.*", "", m.group(1))
    return body.split()


def stages(dockerfile):
    """name -> stage text, split at FROM lines."""
    out = {}
    parts = re.split(r"^FROM\s+", dockerfile, flags=re.M)
    for p in parts[1:]:
        m = re.match(r"\S+\s+AS\s+(\S+)", p, re.I)
        out[m.group(1) if m else f"stage{len(out)}"] = p
    return out


def apt_packages(stage):
    text = stage.replace("\\\n", " ")
    pkgs = []
    for m in re.finditer(r"apt-get install\s+(.*?)(?:&&|$)", text, re.M):
        for tok in m.group(1).split():
            tok = tok.strip('"\'')
            if tok.startswith("-"):
                continue
            pkgs.append(re.sub(r"\$\{\w+\}", "*", tok))
    return pkgs


def runtime_library(dev_package):
    """The exact-version shared-library package a -dev package depends on."""
    if shutil.which("dpkg-query") is None:
        return None
    r = subprocess.run(["dpkg-query", "-W", "-f=${Depends}", dev_package],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return None
    for dep in r.stdout.split(","):
        m = re.match(r"\s*(lib[\w.+-]+)\s*\(=", dep)
        if m and not m.group(1).endswith("-dev"):
            return m.group(1)
    return None


def check(repo, kind):
    path = repo / f"docker/Dockerfile.{kind}"
    text = path.read_text()
    st = stages(text)
    build, runtime = st.get("build"), st.get("runtime")
    if build is None or runtime is None or list(st)[-1] != "runtime":
        problems.append(f"{path.name}: needs a 'build' stage and a final 'runtime' stage")
        return
    users = re.findall(r"^USER\s+(\S+)", runtime, re.M)
    if not users or not re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]):
        problems.append(f"{path.name}: the runtime stage must end as a numeric non-root USER")
    for b in BINARIES:
        if f"/usr/local/bin/{b}" not in runtime or b not in build:
            problems.append(f"{path.name}: {b} is not built, copied and checked")
    if "COPY --from=build" not in runtime:
        problems.append(f"{path.name}: the runtime stage copies nothing from the build stage")
    built = set(apt_packages(build))
    for p in setup_packages(repo):
        if p not in built and p not in NOT_NEEDED[kind]:
            problems.append(f"{path.name}: build stage lacks {p} (scripts/setup.sh installs it)")
    runtime_pkgs = apt_packages(runtime)
    for p in sorted(built):
        if not p.endswith("-dev") or p in NOT_AT_RUNTIME:
            continue
        lib = runtime_library(p)
        if lib and not any(r == lib or r.startswith(lib + "-") for r in runtime_pkgs):
            problems.append(f"{path.name}: runtime stage lacks {lib} (the library of {p})")
    if re.search(r"^HEALTHCHECK\s+(?!NONE)", text, re.M) and "grpc_health_probe" not in text:
        problems.append(f"{path.name}: HEALTHCHECK without a gRPC health probe")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    repo = pathlib.Path(ap.parse_args().repo)
    for kind in ("cpu", "cuda"):
        check(repo, kind)
    ignores = [(repo / f"docker/Dockerfile.{k}.dockerignore") for k in ("cpu", "cuda")]
    texts = [p.read_text() if p.exists() else None for p in ignores]
    if None in texts:
        problems.append("docker/Dockerfile.{cpu,cuda}.dockerignore: missing")
    else:
        if texts[0] != texts[1]:
            problems.append("docker/*.dockerignore: the cpu and cuda lists differ")
        lines = {l.strip() for l in texts[0].splitlines()}
        for p in IGNORED_PATHS:
            if p not in lines:
                problems.append(f"docker/*.dockerignore: does not exclude {p}")
    for p in problems:
        print(f"check_images: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
