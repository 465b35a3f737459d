"""`jaxgen` command line: train | eval | sample | plot | bench | backprop; mistakes: one line, no trace."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from jaxgen.errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line naming --help, before anything heavy is imported."""

    def error(self, message: str):
        raise UserError(f"{message} (see {self.prog} --help)")


def _train_args(t: argparse.ArgumentParser) -> None:
    t.add_argument("--workdir", required=True, help="run directory (config, metrics, checkpoints, plots)")
    t.add_argument(
        "--data", default=None, help="embedded (default) | fashion | mnist | idx:PATH | tfds:NAME | toy:NAME"
    )
    t.add_argument("--config", default=None, metavar="FILE", help="start from a saved config.json")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    t.add_argument(
        "--seeds",
        default=None,
        metavar="0,1,2",
        help="train these seeds together as one program: one run per seed in WORKDIR/seed-N, mean and std in"
        " WORKDIR/seeds.json (ranges: 0-4)",
    )
    t.add_argument(
        "--seeds-mode",
        choices=["vmap", "unroll"],
        default="vmap",
        help="--seeds as one jax.vmap-ed program (default; each seed equal to its single run to float"
        " rounding) or the seeds' chunks side by side (each equal to its single run bit for bit)",
    )
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--no-plots", action="store_true", help="skip the plots at the end")
    t.add_argument(
        "--distributed",
        action="store_true",
        help="join a multi-process run (jax.distributed; the cluster is detected, or give the next three)",
    )
    t.add_argument("--coordinator", default=None, metavar="HOST:PORT", help="process 0's address")
    t.add_argument("--num-processes", type=int, default=None)
    t.add_argument("--process-id", type=int, default=None)


def _reader_commands(sub) -> None:
    """eval, sample, plot and bench: the commands that read runs or measure, and load no task table."""
    e = sub.add_parser("eval", help="evaluate the newest good checkpoint on a test split")
    e.add_argument("workdir")
    e.add_argument("--checkpoint", default="latest", type=_which, help=CHECKPOINT_HELP)
    e.add_argument("--data", default=None, help="test split of this SPEC (default: the run's data)")
    judge_help = "an mlp run (MLP or CNN) that scores generated images; two: docs/quality.md"
    e.add_argument("--judge", action="append", default=None, metavar="RUN_DIR", help=judge_help)
    nll_help = "VAE: importance samples per test image of the NLL (default 100; 5000: Burda et al.; 0: skip)"
    e.add_argument("--nll-k", type=int, default=None, metavar="K", help=nll_help)
    e.add_argument("--nll-n", type=int, default=None, metavar="N", help="VAE: the likelihood of the first N "
                   "test images only (default: all)")  # fmt: skip

    s = sub.add_parser("sample", help="samples of a generative run (ae, gan): a float32 .npy or a .png grid")
    s.add_argument("workdir")
    s.add_argument("--n", type=int, default=64, help="number of samples")
    out_help = ".npy: the array ([N, H, W, C] in [0, 1]; toys [N, D]); .png: a picture (grid, toy scatter)"
    s.add_argument("--out", required=True, metavar="FILE.npy|FILE.png", help=out_help)
    s.add_argument("--seed", type=int, default=None, help="sampling seed (default: the run's fixed eval key)")
    s.add_argument("--checkpoint", default="latest", type=_which, help=CHECKPOINT_HELP)
    s.add_argument("--judge", action="append", default=None, metavar="RUN_DIR", help="an mlp run that scores"
                   " the samples (repeat: several judges)")  # fmt: skip
    s.add_argument("--data", default=None, help="real images the judge compares with (default: the run's)")

    pl = sub.add_parser("plot", help="draw curves and task figures from a run directory")
    pl.add_argument("workdir")
    pl.add_argument("--data", default=None, help="figures on the test split of this SPEC")
    pl.add_argument("--checkpoint", default="latest", type=_which, help=CHECKPOINT_HELP)

    bn = sub.add_parser("bench", help="benchmarks: JSON + markdown + figures in --out, device named")
    bn.add_argument("name", choices=["activations", "throughput", "peers"])
    bn.add_argument("--quick", action="store_true", help="the under-two-minutes CPU configuration")
    bn.add_argument("--batch-size", type=int, default=None, help="peers only: the batch size (default 128)")
    bn.add_argument("--data", default=None, metavar="SPEC", help="activations only: train and test on SPEC "
                    "(default: the embedded sample, tested on ../shared/data/mnist-test5k when present; "
                    "--preset uva: fashion)")  # fmt: skip
    bn.add_argument("--preset", choices=["uva"], default=None, help="activations only: uva = UvA DL "
                    "tutorial 3 on Fashion-MNIST (MLP 784-512-256-256-128-10, SGD, early stopping, 5 seeds) "
                    "beside its figures; --quick: a subsample, under a minute on a 2-core CPU")  # fmt: skip
    bn.add_argument("--out", required=True, help="output directory")


def build_parser(command: str | None = "train") -> argparse.ArgumentParser:
    """The parser; the task registry (which imports JAX) is read only when `command` is train or config
    (main passes the command it is given), so that --version, --help and the other commands' usage errors
    answer at once."""
    from jaxgen import versions  # installed metadata only: no JAX

    p = _Parser(prog="jaxgen", description=__doc__)
    p.add_argument("--version", action=versions.PrintVersions, help="show the versions of jaxgen, JAX, Flax, "
                   "Optax, Orbax, NumPy, ... (and whether they are the locked ones) and exit")  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a task; rerun the same command to resume")
    c = sub.add_parser(
        "config", help="print exactly what a run would run, as JSON (its resolved.json; a file for --config)"
    )
    if command in ("train", "config"):
        from jaxgen import configs  # the tasks' configs and tables: no JAX

        by_task = t.add_subparsers(dest="task", required=True, parser_class=_Parser, metavar="TASK")
        for name, cls in configs.CONFIGS.items():
            tp = by_task.add_parser(
                name,
                help=(cls.__doc__ or name).splitlines()[0],
                formatter_class=argparse.RawDescriptionHelpFormatter,
                epilog=configs.describe(cls),
            )
            _train_args(tp)
        c.add_argument("task", choices=list(configs.CONFIGS))
        c.add_argument("--data", default=None, help="the data it would train on (default: embedded)")
        c.add_argument("--config", default=None, metavar="FILE", help="start from a saved config")
        c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a key")

    _reader_commands(sub)
    b = sub.add_parser("backprop", help="walk the classic 2-2-2 backpropagation example step by step")
    b.add_argument("--iters", type=int, default=10000, help="iterations for the final error")
    return p


def _command(argv: list[str]) -> str | None:
    """The subcommand named in argv (the first word that is not a flag), before parsing."""
    return next((a for a in argv if not a.startswith("-")), None)


CHECKPOINT_HELP = "latest (default): the newest good one; best: the best by the run's best_metric; or a step"


def _which(value: str) -> str | int:
    """--checkpoint's value: latest, best or a step number."""
    if value in ("latest", "best"):
        return value
    if not (value.isascii() and value.isdigit()):
        raise UserError(f"--checkpoint takes latest, best or a step number, got {value!r}")
    return int(value)


def _existing_run(workdir: str) -> Path:
    path = Path(workdir)
    if not (path / "resolved.json").exists() and not (path / "config.json").exists():
        raise UserError(f"{workdir} is not a jaxgen run directory (no resolved.json): train one first")
    return path


def _asked(args):
    """(the config the user asked for, data spec) from --config, --set and --data: checked, no JAX."""
    from jaxgen import config, configs, data

    cls = configs.config_class(args.task)  # the task name is resolved here, once; below it is the class
    overrides, spec = ({}, None) if args.config is None else configs.read_file(cls, args.config)
    spec = args.data or spec or "embedded"
    data.parse_spec(spec)
    return config.make(cls, {**overrides, **config.parse_sets(cls, args.set)}), spec


def cmd_train(args) -> dict:
    cfg, spec = _asked(args)
    manual = (args.coordinator, args.num_processes, args.process_id)
    if any(v is not None for v in manual) and not (args.distributed and all(v is not None for v in manual)):
        raise UserError("--coordinator, --num-processes and --process-id go together, with --distributed")
    seeds = None
    if args.seeds is not None:
        from jaxgen.seeds import parse_seeds

        seeds = parse_seeds(args.seeds)
        if args.distributed:
            raise UserError("--seeds trains on one process: drop --distributed, or train each seed alone")
    elif args.seeds_mode != "vmap":
        raise UserError("--seeds-mode applies to --seeds: add --seeds 0,1,2 or drop --seeds-mode")
    from jaxgen import runtime, train

    if args.distributed:
        _native_output_to_stderr()
        runtime.init_distributed(*manual)
    if seeds is not None:
        from jaxgen.seeds import train_seeds

        return train_seeds(
            cfg, args.workdir, spec, seeds, mode=args.seeds_mode, progress=not args.no_progress,
            make_plots=not args.no_plots,
        )  # fmt: skip
    return train.train(cfg, args.workdir, spec, progress=not args.no_progress, make_plots=not args.no_plots)


def cmd_config(args) -> dict:
    """What `jaxgen train` would run with the same flags: the resolved.json a new run writes."""
    from jaxgen import configs

    cfg, spec = _asked(args)
    ds = configs.data_for(cfg, spec)
    return configs.record(configs.resolve(cfg, ds), spec)


def _judge(run_dirs: list[str] | None):
    """The judges named by --judge (repeatable), loaded before anything else is read; None: no judge."""
    if not run_dirs:
        return None
    from jaxgen.judge import Judge

    return [Judge(d) for d in run_dirs]


def cmd_eval(args) -> dict:
    run_dir = _existing_run(args.workdir)
    from jaxgen import data

    if args.data:
        data.parse_spec(args.data)
    from jaxgen import runs, runtime

    nll_k = NLL_K if args.nll_k is None else args.nll_k
    if not 0 <= nll_k <= 100_000:
        raise UserError(f"--nll-k must be in [0, 100000] importance samples (0: skip), got {nll_k}")
    if args.nll_n is not None and args.nll_n < 2:
        raise UserError(f"--nll-n must be at least 2 test images, got {args.nll_n}")
    judge = _judge(args.judge)
    r = runs.restore_for_eval(run_dir, args.data, checkpoint=args.checkpoint)
    if args.nll_k and not getattr(r.cfg, "variational", False):
        raise UserError(f"--nll-k measures a VAE's likelihood; {run_dir} is no VAE run: drop --nll-k")
    import jax

    with runtime.precision_scope(r.cfg.precision):  # the run's matmul precision, as in training
        key = runtime.eval_key(r.cfg.seed)
        # the full form (kNN against the whole training split, ...), where checkpoints use subsamples
        test = data.split(r.dataset, "test")
        metrics = r.task.evaluate(r.state.params, test, key, judge=judge, full=True)
        if nll_k and getattr(r.cfg, "variational", False):
            first = {name: v[: args.nll_n] for name, v in test.items()}  # v[:None]: all of them
            metrics.update(r.task.likelihood(r.state.params, first, jax.random.fold_in(key, 1), nll_k))
    return {
        "task": r.task.name,
        "step": r.step,
        "params_sha256": r.params_sha256,
        "data": r.dataset.spec,
        **metrics,
        "device": runtime.device_name(),
    }


def cmd_sample(args) -> dict:
    run_dir = _existing_run(args.workdir)
    if args.n < 1:
        raise UserError(f"--n must be a positive number of samples, got {args.n}")
    out = Path(args.out)
    if out.suffix not in (".npy", ".png"):
        raise UserError(
            f"--out {args.out} must name a .npy file (the array) or a .png file (a picture of the samples),"
            " e.g. --out samples.png"
        )
    if not out.parent.is_dir():
        raise UserError(f"--out {args.out}: folder {out.parent} does not exist; create it first")
    if args.seed is not None and not 0 <= args.seed < 2**31:
        raise UserError(f"--seed must be in [0, 2**31), got {args.seed}")
    from jaxgen import data

    if args.data:
        data.parse_spec(args.data)
    import numpy as np

    from jaxgen import runs, runtime
    from jaxgen.tasks import TASKS

    run = runs.load_run(run_dir)
    task_name = run[0]
    if not hasattr(TASKS[task_name][1], "sample"):
        generative = ", ".join(n for n, (_, cls) in TASKS.items() if hasattr(cls, "sample"))
        raise UserError(f"{run_dir} is a {task_name} run, which does not generate: sample takes {generative}")
    judge = _judge(args.judge)
    r = runs.restore_for_eval(run_dir, args.data, run=run, checkpoint=args.checkpoint)
    if judge is not None and r.dataset.kind != "image":
        raise UserError(f"--judge scores images; {run_dir} was trained on {r.dataset.spec}: drop --judge")
    import jax

    key = runtime.eval_key(r.cfg.seed) if args.seed is None else jax.random.key(args.seed)
    with runtime.precision_scope(r.cfg.precision):
        samples = np.asarray(r.task.sample(r.state.params, key, args.n), np.float32)
    if out.suffix == ".png":  # images in a near-square grid; toy points over the run's test data
        from jaxgen import plots
        from jaxgen.sinks import write_png

        write_png(plots.samples_rgb(r.task, samples, r.dataset.test), out)
    else:
        np.save(out, samples)
    result = {
        "task": r.task.name,
        "step": r.step,
        "params_sha256": r.params_sha256,
        "n": int(samples.shape[0]),
        "shape": list(samples.shape),
        "min": round(float(samples.min()), 6),
        "max": round(float(samples.max()), 6),
        "out": str(out),
    }
    if judge is not None:
        from jaxgen.tasks import base

        real = np.asarray(data.split(r.dataset, "test")["image"], np.float32) / 255.0
        train = np.asarray(data.split(r.task.ds, "train")["image"], np.float32) / 255.0
        result.update(base.judge_reports(judge, samples, real, train))
    return {**result, "device": runtime.device_name()}


def cmd_plot(args) -> dict:
    run_dir = _existing_run(args.workdir)
    from jaxgen import data

    if args.data:
        data.parse_spec(args.data)
    from jaxgen import plots, runs, runtime

    r = runs.restore_for_eval(run_dir, args.data, checkpoint=args.checkpoint)
    with runtime.precision_scope(r.cfg.precision):
        files = plots.draw_run(run_dir, r.task, r.state.params, r.dataset.test, r.step)
    return {"task": r.task.name, "step": r.step, "plots": [str(f) for f in files]}


def cmd_bench(args) -> dict:
    from jaxgen.bench import common

    if args.batch_size is not None and args.name != "peers":
        raise UserError(f"--batch-size applies to `jaxgen bench peers`, not {args.name}")
    for flag, value in (("--data", args.data), ("--preset", args.preset)):
        if value is not None and args.name != "activations":
            raise UserError(f"{flag} applies to `jaxgen bench activations`, not {args.name}")
    if args.data is not None and args.data != "fashion":  # fashion: the preset names how to install it
        from jaxgen import data

        data.parse_spec(args.data)
    if args.name == "throughput":
        from jaxgen.bench import throughput as bench
    elif args.name == "peers":
        from jaxgen.bench import peers as bench
    elif args.preset == "uva":
        from jaxgen.bench import uva

        cfg = uva.UVA_QUICK if args.quick else uva.UVA
        return common.summary_line(uva.run_uva(cfg, args.out, spec=args.data))
    else:
        from jaxgen.bench import activations as bench

        cfg = bench.QUICK if args.quick else bench.FULL
        return common.summary_line(bench.run(cfg, args.out, data_spec=args.data))
    cfg = bench.QUICK if args.quick else bench.FULL
    if args.batch_size is not None:
        if not 1 <= args.batch_size <= 65536:
            raise UserError(f"--batch-size must be between 1 and 65536, got {args.batch_size}")
        cfg = dataclasses.replace(cfg, batch_size=args.batch_size)
    return common.summary_line(bench.run(cfg, args.out))


def cmd_backprop(args) -> None:
    from jaxgen import backprop

    print(backprop.walkthrough(args.iters))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `jaxgen` console script; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = build_parser(_command(argv)).parse_args(argv)
        handler = {
            "train": cmd_train,
            "eval": cmd_eval,
            "sample": cmd_sample,
            "config": cmd_config,
            "plot": cmd_plot,
            "bench": cmd_bench,
            "backprop": cmd_backprop,
        }
        _quiet_libraries()
        result = handler[args.command](args)
    except UserError as err:
        print(f"jaxgen: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("jaxgen: interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # a file the command had to write or read: say which, no traceback
        where = f" {err.filename}" if err.filename else ""
        print(f"jaxgen: error: cannot use{where} ({err.strerror or err}): check the path", file=sys.stderr)
        return 2
    if result is not None:
        from jaxgen.sinks import dumps  # strict JSON: a non-finite number is null, never a bare NaN

        print(dumps(result), file=_STDOUT or sys.stdout, flush=True)
    return 0


NLL_K = 100  # jaxgen eval --nll-k default: importance samples per test image of a VAE (5000: the papers)
_STDOUT = None  # the real stdout when native libraries' output was sent to stderr


def _native_output_to_stderr() -> None:
    """Gloo (multi-process CPU collectives) logs to file descriptor 1 from C++; keep stdout for the JSON line
    by pointing descriptor 1 at stderr and writing the summary to a duplicate of the original."""
    global _STDOUT
    if _STDOUT is None:
        sys.stdout.flush()
        _STDOUT = os.fdopen(os.dup(1), "w")
        os.dup2(2, 1)


def _quiet_libraries() -> None:
    """absl/orbax log every checkpoint at INFO; keep the terminal for our own lines."""
    import logging

    logging.getLogger("absl").setLevel(logging.ERROR)
    logging.getLogger("orbax").setLevel(logging.ERROR)


if __name__ == "__main__":
    sys.exit(main())
