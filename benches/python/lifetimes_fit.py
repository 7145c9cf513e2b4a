#!/usr/bin/env python3
"""Fit Python lifetimes' BG/NBD and Gamma-Gamma on a summary CSV, for the Rust benchmark.

Usage: lifetimes_fit.py SUMMARY_CSV

SUMMARY_CSV has columns ID,frequency,recency,T,monetary_value (as the Rust benchmark writes
it). The script creates its own virtualenv under benches/.venv (next to this folder) with
lifetimes installed, re-runs itself there, and prints one JSON line on stdout:
{"status":"ok","bgnbd_seconds":…,"gamma_gamma_seconds":…,"bgnbd":{…},"gamma_gamma":{…}}
or {"status":"skipped","reason":…} when Python packages cannot be installed.
"""

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(os.path.dirname(HERE), ".venv")
VENV_PYTHON = os.path.join(VENV, "bin", "python")


def skip(reason):
    print(json.dumps({"status": "skipped", "reason": reason}))
    sys.exit(0)


def ensure_venv():
    """Re-executes this script inside benches/.venv, creating it when needed."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    try:
        if not os.path.exists(VENV_PYTHON):
            subprocess.run([sys.executable, "-m", "venv", VENV], check=True,
                           stdout=sys.stderr, stderr=sys.stderr)
        probe = subprocess.run([VENV_PYTHON, "-c", "import lifetimes"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if probe.returncode != 0:
            subprocess.run([VENV_PYTHON, "-m", "pip", "install", "-q", "lifetimes==0.11.3"],
                           check=True, stdout=sys.stderr, stderr=sys.stderr)
    except (OSError, subprocess.CalledProcessError) as e:
        skip(f"could not prepare the virtualenv: {e}")
    os.execv(VENV_PYTHON, [VENV_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    ensure_venv()
    try:
        import pandas as pd
        from lifetimes import BetaGeoFitter, GammaGammaFitter
    except Exception as e:  # noqa: BLE001 - any import problem means "skip"
        skip(f"lifetimes unavailable: {e}")

    data = pd.read_csv(sys.argv[1])
    started = time.perf_counter()
    bgf = BetaGeoFitter(penalizer_coef=0.0)
    bgf.fit(data["frequency"], data["recency"], data["T"])
    bgnbd_seconds = time.perf_counter() - started

    repeat = data[(data["frequency"] > 0) & (data["monetary_value"] > 0)]
    started = time.perf_counter()
    ggf = GammaGammaFitter(penalizer_coef=0.0)
    ggf.fit(repeat["frequency"], repeat["monetary_value"])
    gamma_gamma_seconds = time.perf_counter() - started

    p = bgf.params_
    g = ggf.params_
    print(json.dumps({
        "status": "ok",
        "customers": int(len(data)),
        "bgnbd_seconds": bgnbd_seconds,
        "gamma_gamma_seconds": gamma_gamma_seconds,
        "bgnbd": {"r": p["r"], "alpha": p["alpha"], "a": p["a"], "b": p["b"]},
        "gamma_gamma": {"p": g["p"], "q": g["q"], "gamma": g["v"]},
    }))


if __name__ == "__main__":
    main()
