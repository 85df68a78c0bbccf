"""``lumo-hydra pack``/``unpack`` of 1,000 runs (records only) against ``tar czf``/``tar xzf`` of the same
folders (target: at most 1.5x), and ``push``/``pull`` of 100 runs to a local S3 server (moto's
``ThreadedMotoServer`` on 127.0.0.1, through s3fs): runs per second, and a second, no-op push (target:
under 10% of the first). Issue 14; docs/share.md.

The store is made from one real run (``SimpleExperiment``, as the writer writes it) copied under new ids.
Every round runs each side once, alternating which goes first, into fresh folders (deleting many files
just before a timed extraction slows it on this VM's disk); printed: medians with min-max of wall time
and of CPU time (ours: this process, threads included; tar's: tar and gzip), the load average. Each
round also runs ``lumo-hydra pack``/``unpack`` as commands in a new process (interpreter start-up and
imports included), each beside a ``tar czf``/``tar xzf`` of its own, in alternating order (the pair under the
same conditions), and the S3 part times ``lumo-hydra push`` in new
processes: the first push, a no-op push (the ledger vouches: the backend is not even imported) and a
no-op push with ``--verify`` (a new S3 session and one listing). Each round also times ``python -c pass``
and ``python -S -c pass``: the difference is what the ``.pth`` files of site-packages cost every command
(printed, with the command-line ratios less that cost beside the plain ones), and ``lumo-hydra pack`` under
``python -S`` with only the package on the path: no site at all, so the modules the ``.pth`` imports first
(pathlib, re, typing...) are the command's own cost, as on a machine without that ``.pth``.

    env -u PYTHONDONTWRITEBYTECODE python benchmarks/bench_pack.py [--runs 1000] [--rounds 5] \\
        [--push-runs 100] [--no-s3] [--no-cli] [--wait-quiet S]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _benchlib import load_average, work_folder

ONE_RUN = """
from lumo_hydra import SimpleExperiment
exp = SimpleExperiment("bench", heartbeat_interval=0)
exp.start()
exp.dump_params({"lr": 0.1, "layers": [64, 64], "optim": {"name": "sgd", "momentum": 0.9}})
for step in range(20):
    exp.dump_metric("loss", 1.0 / (step + 1), cmp="min", step=step)
    exp.dump_metric("acc", step / 20, cmp="max", step=step)
    print("epoch", step, "loss", 1.0 / (step + 1))
exp.end()
print(exp.test_name)
"""


def spread(xs: list[float], digits: int = 3) -> str:
    return f"{statistics.median(xs):.{digits}f} ({min(xs):.{digits}f}-{max(xs):.{digits}f})"


def ratios(res: dict[str, list[float]], ours: str, ref: str) -> str:
    """``ours`` against ``ref``, paired by round: the median and range of the wall ratios, our CPU and its ratio."""
    wall = [x / y for x, y in zip(res[ours], res[ref])]
    cpu = [x / y for x, y in zip(res[ours + "_cpu"], res[ref + "_cpu"])]
    return (f"wall {statistics.median(wall):.2f}x (rounds {min(wall):.2f}-{max(wall):.2f}x), "
            f"CPU {spread(res[ours + '_cpu'])} s = {statistics.median(cpu):.2f}x")


def make_store(root: Path, n: int) -> list[str]:
    """A store of ``n`` runs: one real run, copied under new ids (its files rewritten with the new id)."""
    env = {**os.environ, "LUMO_HOME": str(root)}
    out = subprocess.run([sys.executable, "-c", ONE_RUN], env=env, capture_output=True, text=True, check=True,
                         cwd=root.parent)
    first = out.stdout.split()[-1]
    src = root / "experiments" / "bench" / first
    files = {p.name: p.read_bytes() for p in src.iterdir() if p.is_file()}
    ids = [first]
    day = first.split(".")[0]
    for i in range(1, n):
        test = f"{day}.{i:04d}.bct"
        d = root / "experiments" / "bench" / test
        d.mkdir()
        for name, data in files.items():
            (d / name).write_bytes(data.replace(first.encode(), test.encode()))
        ids.append(test)
    return ids


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _timed(fn: object, child: bool | str = False) -> tuple[float, float]:
    """(wall, CPU) of ``fn()``: CPU of this process, of its children (``child=True``) or both (``"both"``)."""
    def cpu() -> float:
        return (_children_cpu() if child else 0.0) + (time.process_time() if child in (False, "both") else 0.0)

    c0 = cpu()
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    wall = time.perf_counter() - t0
    return wall, cpu() - c0


#: ``lumo-hydra ...`` in a new process, as the console script runs it (without a pyenv shim in front)
CLI = [sys.executable, "-c", "import sys; from lumo_hydra.cli import main; sys.exit(main())"]


def _cli(*args: str, env: dict[str, str] | None = None, bare: bool = False) -> None:
    """``lumo-hydra ARGS`` in a new process; ``bare``: under ``python -S`` with only the package on the path
    (no site module, no ``.pth`` files: what a machine without this sandbox's certifi ``.pth`` runs; the
    modules that ``.pth`` imports first, pathlib, re, typing..., are then the command's own cost)."""
    if bare:
        import lumo_hydra

        env = {**(env or os.environ), "PYTHONPATH": str(Path(lumo_hydra.__file__).resolve().parents[1])}
    subprocess.run([sys.executable, *(["-S"] if bare else []), *CLI[1:], *args], check=True,
                   stdout=subprocess.DEVNULL, env=env)


def bench_pack(work: Path, a: argparse.Namespace) -> dict[str, list[float]]:
    from lumo_hydra.share import pack, unpack

    root = work / "store"
    root.mkdir()
    ids = make_store(root, a.runs)
    print(f"store: {len(ids)} runs, {sum(1 for _ in root.rglob('*') if _.is_file())} files", flush=True)
    res: dict[str, list[float]] = {k: [] for k in ("pack", "pack_cpu", "tar_c", "tar_c_cpu", "unpack",
                                                    "unpack_cpu", "tar_x", "tar_x_cpu", "cli_pack", "cli_pack_cpu",
                                                    "cli_unpack", "cli_unpack_cpu", "tar_c3", "tar_c3_cpu",
                                                    "cli_pack_bare", "cli_pack_bare_cpu",
                                                    "size_pack", "size_tar", "size_tar3", "py", "py_cpu", "py_S", "py_S_cpu",
                                                    "pack2", "pack2_cpu", "unpack2", "unpack2_cpu",
                                                    "cli_tar_c", "cli_tar_c_cpu", "cli_tar_x", "cli_tar_x_cpu")}
    quiet = [0, 0]  # timings that started with no other task running, all timings

    def timed(fn: object, child: bool | str) -> tuple[float, float]:
        quiet[0] += wait_quiet(a.wait_quiet)
        quiet[1] += 1
        return _timed(fn, child)

    for r in range(a.rounds):
        out, tgz = work / f"p{r}.tar.gz", work / f"t{r}.tar.gz"
        (work / f"x{r}").mkdir()
        tgz3 = work / f"t3-{r}.tar.gz"
        out2 = work / f"p2-{r}.tar.gz"
        sides = [("pack", lambda out=out: pack(root, ids, out, code=False), False),
                 # the second half of the runs read by a forked child, as lumo-hydra pack does when a core is idle
                 ("pack2", lambda out2=out2: pack(root, ids, out2, code=False, processes=2), "both"),
                 ("tar_c", lambda tgz=tgz: subprocess.run(["tar", "czf", str(tgz), "-C", str(root), "experiments", "locks"],
                                                          check=True), True),
                 # the same gzip level as pack (LEVEL = 3): the like-for-like reference
                 ("tar_c3", lambda tgz3=tgz3: subprocess.run(["tar", "-I", "gzip -3", "-cf", str(tgz3), "-C", str(root),
                                                              "experiments", "locks"], check=True), True)]
        for name, fn, child in (sides if r % 2 == 0 else sides[::-1]):
            wall, cpu = timed(fn, child)
            res[name].append(wall)
            res[name + "_cpu"].append(cpu)
        for k, f in (("size_pack", out), ("size_tar", tgz), ("size_tar3", tgz3)):
            res[k].append(f.stat().st_size)
        sides = [("unpack", lambda out=out, r=r: unpack(out, work / f"u{r}", code=False), False),
                 ("unpack2", lambda out=out, r=r: unpack(out, work / f"u2-{r}", code=False, processes=2), "both"),
                 ("tar_x", lambda tgz=tgz, r=r: subprocess.run(["tar", "xzf", str(tgz), "-C", str(work / f"x{r}")],
                                                               check=True), True)]
        for name, fn, child in (sides if r % 2 == 0 else sides[::-1]):
            wall, cpu = timed(fn, child)
            res[name].append(wall)
            res[name + "_cpu"].append(cpu)
        if a.cli:  # the command line in a new process: interpreter start-up and imports included
            for name, cmd in (("py", [sys.executable, "-c", "pass"]), ("py_S", [sys.executable, "-S", "-c", "pass"])):
                wall, cpu = timed(lambda cmd=cmd: subprocess.run(cmd, check=True), True)  # the interpreter's start-up
                res[name].append(wall)
                res[name + "_cpu"].append(cpu)
            cout, ctgz = work / f"c{r}.tar.gz", work / f"ct{r}.tar.gz"
            (work / f"cx{r}").mkdir()
            # each command beside its tar, in alternating order: the pair runs under the same conditions (the
            # round's own tar ran earlier, before the unpacks above wrote 18,000 files the kernel still flushes)
            pairs = [(("cli_pack", lambda cout=cout: _cli("pack", *ids, "-o", str(cout), "--no-code", "--root", str(root))),
                      ("cli_tar_c", lambda ctgz=ctgz: subprocess.run(["tar", "czf", str(ctgz), "-C", str(root), "experiments",
                                                                      "locks"], check=True))),
                     (("cli_unpack", lambda cout=cout, r=r: _cli("unpack", str(cout), "--no-code", "--root", str(work / f"cu{r}"))),
                      ("cli_tar_x", lambda ctgz=ctgz, r=r: subprocess.run(["tar", "xzf", str(ctgz), "-C", str(work / f"cx{r}")],
                                                                          check=True))),
                     (("cli_pack_bare", lambda r=r: _cli("pack", *ids, "-o", str(work / f"b{r}.tar.gz"), "--no-code",
                                                         "--root", str(root), bare=True)),)]
            for pair in pairs:
                for name, fn in (pair if r % 2 == 0 else pair[::-1]):
                    wall, cpu = timed(fn, True)
                    res[name].append(wall)
                    res[name + "_cpu"].append(cpu)
        print(f"round {r + 1}: pack {res['pack'][-1]:.3f}s vs tar czf {res['tar_c'][-1]:.3f}s, "
              f"unpack {res['unpack'][-1]:.3f}s vs tar xzf {res['tar_x'][-1]:.3f}s (load {load_average()})", flush=True)
    if a.wait_quiet:
        print(f"{quiet[0]} of {quiet[1]} timings started with no other task running (--wait-quiet {a.wait_quiet:g} s)")
    return res


def wait_quiet(limit: float) -> bool:
    """Wait up to ``limit`` seconds until no other task runs (Linux ``/proc/loadavg``: ``running/total``, this
    process included); whether it came. On a shared machine a timing then starts when the others pause."""
    end = time.monotonic() + limit
    while limit > 0:
        try:
            with open("/proc/loadavg", "rb") as f:
                if int(f.read().split()[3].split(b"/")[0]) <= 1:
                    return True
        except (OSError, ValueError, IndexError):
            return False
        if time.monotonic() >= end:
            return False
        time.sleep(0.02)
    return False


def bench_s3(work: Path, a: argparse.Namespace) -> dict[str, float] | None:
    try:
        import s3fs
        from moto.server import ThreadedMotoServer
    except ImportError as e:
        print(f"push/pull to S3 skipped: {e} (pip install 'moto[server]' s3fs)")
        return None
    import logging

    from lumo_hydra.share.remote import pull, push

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      LUMO_CACHE_DIR=str(work / "cache"))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        opts = {"endpoint_url": f"http://{host}:{port}"}
        fresh = {**opts, "skip_instance_cache": True}  # a new S3 session, as in a new process
        s3fs.S3FileSystem(**fresh).mkdir("bench")
        root = work / "s3store"
        root.mkdir()
        ids = make_store(root, a.push_runs)
        url = "s3://bench/runs"
        cli: dict[str, float] = {}
        if a.cli:  # lumo-hydra push in new processes: the first, a no-op trusting the ledger, a no-op with --verify
            env = {**os.environ, "AWS_ENDPOINT_URL": opts["endpoint_url"]}
            args = ("push", *ids, "s3://bench/cli", "--no-code", "--root", str(root))
            cli["push"] = _timed(lambda: _cli(*args, env=env), True)[0]
            cli["noop"] = _timed(lambda: _cli(*args, env=env), True)[0]
            cli["noop_verify"] = _timed(lambda: _cli(*args, "--verify", env=env), True)[0]
            cli["start"] = _timed(lambda: _cli("push", "--help", env=env), True)[0]
        first, _ = _timed(lambda: push(root, ids, url, storage_options=opts, code=False))  # makes the session
        again, _ = _timed(lambda: push(root, ids, url, storage_options=opts, code=False))
        again_fresh, _ = _timed(lambda: push(root, ids, url, storage_options=fresh, code=False, verify=True))
        session, _ = _timed(lambda: s3fs.S3FileSystem(**fresh).ls("bench"))
        got: dict[str, object] = {}
        pulled, _ = _timed(lambda: got.update(r=pull(url, work / "pulled", storage_options=fresh, code=False)))
        assert len(got["r"].added) == len(ids)  # type: ignore[attr-defined]
    finally:
        server.stop()
    return {"runs": len(ids), "push": first, "push_again": again, "push_again_fresh": again_fresh,
            "session": session, "pull": pulled, **{f"cli_{k}": v for k, v in cli.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1000, help="runs to pack/unpack (default 1000)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    ap.add_argument("--push-runs", type=int, default=100, help="runs to push/pull to S3 (default 100)")
    ap.add_argument("--no-s3", action="store_true", help="skip push/pull to the local S3 server")
    ap.add_argument("--no-cli", dest="cli", action="store_false",
                    help="skip the lumo-hydra command lines in new processes (start-up included)")
    ap.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                    help="before each timing wait up to S seconds for no other task running (a shared machine)")
    ap.add_argument("--work", metavar="DIR", help="work folder (default: a fresh temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
    a = ap.parse_args(argv)
    print(f"load average at start: {load_average()}")
    with work_folder(a, "lumo-bench-pack-") as work:
        res = bench_pack(work, a)
        print(f"\n{a.runs} runs, records only, {a.rounds} rounds, medians (min-max):")
        for ours, tar, what in (("pack", "tar_c", "tar czf"), ("unpack", "tar_x", "tar xzf")):
            print(f"  {ours:6s} {spread(res[ours])} s, {what} {spread(res[tar])} s (CPU {spread(res[tar + '_cpu'])} s): "
                  f"{ratios(res, ours, tar)}  (target <= 1.5x)")
            if res["cli_" + ours]:
                print(f"  lumo-hydra {ours} (new process) {spread(res['cli_' + ours])} s, {what} beside it "
                      f"{spread(res['cli_' + tar])} s: {ratios(res, 'cli_' + ours, 'cli_' + tar)}  (target <= 1.5x; "
                      f"against the round's {what} above: {ratios(res, 'cli_' + ours, tar)})")
        if res["py"]:
            site = [x - y for x, y in zip(res["py"], res["py_S"])]
            print(f"  interpreter start-up: `python -c pass` {spread(res['py'])} s (CPU {spread(res['py_cpu'])}), "
                  f"`python -S -c pass` {spread(res['py_S'])} s (CPU {spread(res['py_S_cpu'])}): the site module and "
                  f"site-packages' .pth files (-S skips them) cost {statistics.median(site):.3f} s of every command here")
            print(f"  lumo-hydra pack under python -S (no site: the modules this sandbox's .pth imports are the "
                  f"command's own) {spread(res['cli_pack_bare'])} s: {ratios(res, 'cli_pack_bare', 'cli_tar_c')}")
            for ours, tar in (("pack", "tar_c"), ("unpack", "tar_x")):
                ratio = [(x - d) / y for x, d, y in zip(res["cli_" + ours], site, res["cli_" + tar])]
                print(f"  lumo-hydra {ours} less that cost (a bound: the command needs site-packages): "
                      f"wall {statistics.median(ratio):.2f}x "
                      f"(rounds {min(ratio):.2f}-{max(ratio):.2f}x)")
        for ours, tar, what in (("pack2", "tar_c", "tar czf"), ("unpack2", "tar_x", "tar xzf")):
            print(f"  {ours[:-1]} with processes=2 (a forked child: lumo-hydra's choice when a core is idle) {spread(res[ours])} s, "
                  f"against {what}: {ratios(res, ours, tar)} (CPU of both processes)")
        ratio = [x / y for x, y in zip(res["pack"], res["tar_c3"])]
        cpu = [x / y for x, y in zip(res["pack_cpu"], res["tar_c3_cpu"])]
        print(f"  same gzip level: tar -I 'gzip -3' {spread(res['tar_c3'])} s, CPU {spread(res['tar_c3_cpu'])} s: pack wall "
              f"{statistics.median(ratio):.2f}x, CPU {statistics.median(cpu):.2f}x; sizes: pack {res['size_pack'][-1]:,} B, "
              f"tar czf {res['size_tar'][-1]:,} B, tar + gzip -3 {res['size_tar3'][-1]:,} B")
        s3 = None if a.no_s3 else bench_s3(work, a)
        if s3:
            n = s3["runs"]
            print(f"\npush/pull of {n} runs to S3 (moto on 127.0.0.1): push {s3['push']:.2f} s ({n / s3['push']:.0f} runs/s), "
                  f"pull {s3['pull']:.2f} s ({n / s3['pull']:.0f} runs/s); second, no-op push {s3['push_again']:.3f} s = "
                  f"{100 * s3['push_again'] / s3['push']:.1f}% of the first (target < 10%) with the S3 session kept "
                  f"(trusting the ledger); verify=True from a new session {s3['push_again_fresh']:.3f} s = "
                  f"{100 * s3['push_again_fresh'] / s3['push']:.1f}% (a new session + one listing alone: {s3['session']:.3f} s)")
            if "cli_push" in s3:
                print(f"lumo-hydra push in new processes: first {s3['cli_push']:.2f} s; no-op {s3['cli_noop']:.3f} s = "
                      f"{100 * s3['cli_noop'] / s3['cli_push']:.1f}% of the first (target < 10%); no-op --verify "
                      f"{s3['cli_noop_verify']:.3f} s = {100 * s3['cli_noop_verify'] / s3['cli_push']:.1f}%; "
                      f"`push --help` alone {s3['cli_start']:.3f} s")
        if a.json:
            print(json.dumps({"pack": res, "s3": s3}))
    print(f"load average at end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
