"""`filingcontrast` command line: a thin shell over the library.

Every stage command reads one `RunConfig` (from `--config FILE`, defaults otherwise) plus dotted
overrides (`train.lr=1e-4`), and calls the stage function. User mistakes (`UserError`) print one
line and exit 1; config mistakes (`ConfigError`) exit 2. Heavy libraries are imported inside the
command that needs them, so `--help` and config errors answer instantly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filingcontrast import __version__, runtime
from filingcontrast.config import RunConfig, load_config, parse_override_value
from filingcontrast.errors import ConfigError, UserError

Handler = Callable[[argparse.Namespace], int | None]


def _config(args: argparse.Namespace, extra: list[str] | None = None) -> RunConfig:
    """The run config from --config, the command's own flags (as overrides) and key=value args.
    A key=value that sets what a flag sets, to something else, is an error: neither may win
    silently (`train --out runs/a name=b` would train into runs/b)."""
    user = list(getattr(args, "overrides", []) or [])
    flags = dict(o.split("=", 1) for o in extra or [])
    given: dict[str, str] = {}
    for override in user:
        key, _, value = override.partition("=")
        key = key.strip()
        if key in flags and parse_override_value(value.strip()) != parse_override_value(flags[key]):
            raise ConfigError(f"{override}: conflicts with a flag that sets {key}={flags[key]}")
        if key in given and given[key] != value.strip():  # `train.lr=1e-3 train.lr=2e-3`
            raise ConfigError(
                f"{override}: {key} is already set to {given[key]} on the command line"
            )
        given[key] = value.strip()
    return load_config(getattr(args, "config", None), list(extra or []) + user)


def _out_dir(value: str) -> Path:
    """An --out directory that names something (not '', '.', '..' or '/')."""
    out = Path(value)
    if out.name in ("", ".", "..") or not out.resolve().name:
        raise UserError(f"--out {value!r}: must name a directory, e.g. runs/NAME")
    return out


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        help="TOML run config (e.g. src/filingcontrast/configs/demo.toml, configs/realistic.toml); "
        "defaults otherwise",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="dotted config overrides, e.g. train.lr=1e-4 pairs.window=0_3",
    )


def _toml_str(value: str) -> str:
    """A CLI string as a TOML string for a dotted override (JSON escaping is valid TOML), so
    Windows paths and quotes in paths survive."""
    return json.dumps(str(value))


def _store_override(args: argparse.Namespace) -> list[str]:
    store = getattr(args, "store", None)
    return [] if store is None else [f"store={_toml_str(store)}"]  # "" is an error, not default


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


# --------------------------------------------------------------------------------------------
# Commands. Each imports its stage lazily.


def cmd_simulate(args: argparse.Namespace) -> int:
    extra = _store_override(args)
    if args.filings is not None:
        extra.append(f"simulate.filings={args.filings}")
    if args.seed is not None:  # the market's seed: it wins over a config's [simulate] seed
        extra.append(f"simulate.seed={args.seed}")
    if args.preset is not None:
        extra.append(f"simulate.preset={_toml_str(args.preset)}")
    cfg = _config(args, extra)
    from filingcontrast.corpus.simulate import simulate_to_store

    summary = simulate_to_store(cfg)
    _print_json(summary)
    return 0


def cmd_ingest_edgar(args: argparse.Namespace) -> int:
    from filingcontrast.corpus.edgar import ingest_edgar

    cfg = _config(args, _store_override(args))
    summary = ingest_edgar(
        store_path=cfg.store,
        tickers=[t.strip().upper() for t in args.tickers.split(",") if t.strip()],
        since=args.since,
        until=args.until,
        identity=args.identity,
        cache_dir=args.http_cache,
        with_prices=not args.no_prices,
    )
    _print_json(summary)
    return 0


def cmd_ingest_files(args: argparse.Namespace) -> int:
    from filingcontrast.corpus.files import ingest_files

    cfg = _config(args, _store_override(args))
    summary = ingest_files(cfg.store, Path(args.path), prices_csv=args.prices)
    _print_json(summary)
    if summary.get("note"):  # e.g. no ticker / acceptance time: no returns can be computed
        print(f"note: {summary['note']}", file=sys.stderr)
    return 0


def cmd_ingest_prices(args: argparse.Namespace) -> int:
    from filingcontrast.corpus.prices import ingest_prices

    cfg = _config(args, _store_override(args))
    summary = ingest_prices(
        cfg.store, csv_path=args.csv, tickers=args.tickers, since=args.since, source=args.source
    )
    _print_json(summary)
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    from filingcontrast.corpus.events import DEFAULT_WINDOWS, compute_events_in_store

    cfg = _config(args, _store_override(args))
    # the default windows, any the store already has, and the one pairs.window asks for
    _print_json(compute_events_in_store(cfg.store, windows=[*DEFAULT_WINDOWS, cfg.pairs.window]))
    return 0


def cmd_corpus_stats(args: argparse.Namespace) -> int:
    from filingcontrast.corpus.events import corpus_stats

    cfg = _config(args, _store_override(args))
    print(corpus_stats(cfg.store))
    return 0


def cmd_parse(args: argparse.Namespace) -> int:
    from filingcontrast.corpus.parse import parse_8k_file

    parsed = parse_8k_file(Path(args.file))
    if args.json:
        _print_json(parsed.to_dict())
    else:
        print(parsed.summary())
    return 0


def cmd_pairs(args: argparse.Namespace) -> int:
    from filingcontrast.pairs import build_pairs

    cfg = _config(args, _store_override(args))
    summary = build_pairs(cfg, _out_dir(args.out))
    _print_json(summary)
    return 0


def cmd_pairs_stats(args: argparse.Namespace) -> int:
    from filingcontrast.pairs import pairs_stats

    print(pairs_stats(Path(args.dir)))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    extra = []
    if args.out is not None:
        out = _out_dir(args.out)
        extra += [f"runs_dir={_toml_str(out.parent.as_posix())}", f"name={_toml_str(out.name)}"]
    cfg = _config(args, extra)
    from filingcontrast.train import train

    result = train(cfg, Path(args.pairs), resume=args.resume)
    from accelerate import PartialState

    if PartialState().is_main_process:  # under accelerate launch, one summary, not one per process
        _print_json(result)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from filingcontrast.predict import compare_cli

    result = compare_cli(
        args.a,
        args.b,
        adapter=args.adapter,
        base=args.base,
        store=args.store,
        explain=args.explain,
    )
    _print_warnings(result, {"A": args.a, "B": args.b})
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['choice']} (P(A better) = {_decimal(result['p_a'], 3)}, confidence "
            f"{result['confidence']})"
        )
        if result.get("analysis"):
            print(result["analysis"])
            for side, facts in result["facts"].items():
                print(f"Extracted from Filing {side}: {'; '.join(facts) or 'no signal found'}")
    return 0


def _decimal(x: float, digits: int, sign: bool = False) -> str:
    """x with `digits` decimals, or as many more as it needs to show which side of 0.5 (or of
    0 with `sign`) it lies on ("0.49996", not "0.500" beside choice B)."""
    from filingcontrast.predict import side_digits

    places = side_digits(x, 0.0 if sign else 0.5, digits)
    return f"{x:{'+' if sign else ''}.{places}f}"


def _print_warnings(result: dict, names: dict[str, str]) -> None:
    """The parser's doubts about input files, one stderr line each (the JSON keeps them too)."""
    for key, text in result.get("warnings", {}).items():
        print(f"warning: {names.get(key, key)}: {text}", file=sys.stderr)


def cmd_rank(args: argparse.Namespace) -> int:
    from filingcontrast.predict import rank_cli

    result = rank_cli(args.files, adapter=args.adapter, base=args.base, k=args.k, store=args.store)
    _print_warnings(result, {})
    if args.json:
        _print_json(result)
    else:
        for row in result["ranking"]:
            ci = row["ci"]
            ci_text = f"[{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "[no interval]"
            print(
                f"{row['rank']:>3}  {_decimal(row['score'], 3, sign=True)}  {ci_text}  {row['id']}"
            )
        if result.get("note"):
            print(f"({result['note']})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    extra = [f"evaluate.split={_toml_str(args.split)}"] if args.split else []
    cfg = _config(args, extra)
    from filingcontrast.config import read_toml
    from filingcontrast.evaluate import evaluate_run

    # A base the user named (base=... or the config file's) must be the adapter's, as for
    # compare --base; the default base is not a request and the adapter's own is used.
    named = any(o.partition("=")[0].strip() == "base" for o in args.overrides or []) or bool(
        args.config and "base" in read_toml(args.config)
    )
    metrics = evaluate_run(
        Path(args.adapter), Path(args.pairs), cfg, base=cfg.base if named else None
    )
    _print_json(
        {k: metrics[k] for k in ("split", "n_pairs", "accuracy", "accuracy_ci") if k in metrics}
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from filingcontrast.report import write_report

    path = write_report(Path(args.run))
    print(path)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from filingcontrast.demo import run_demo

    return run_demo(config_path=args.config, overrides=args.overrides, quick=args.quick)


# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="filingcontrast",
        description="Contrastive instruction fine-tuning on SEC 8-K filings.",
    )
    parser.add_argument("--version", action="version", version=f"filingcontrast {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, help: str, parent: Any = sub) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    p = add("simulate", cmd_simulate, "Generate a simulated market of 8-K filings into the store.")
    p.add_argument("--filings", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--preset", choices=["demo", "realistic"])
    p.add_argument("--store")
    _add_config_args(p)

    ingest = add("ingest", None, "Ingest real filings into the store.")
    isub = ingest.add_subparsers(dest="source", required=True, metavar="SOURCE")
    p = add("edgar", cmd_ingest_edgar, "8-K filings from SEC EDGAR (needs an identity).", isub)
    p.add_argument("--tickers", required=True, help="comma-separated tickers, e.g. AAPL,MSFT")
    p.add_argument("--since", required=True, help="first filing date (YYYY-MM-DD)")
    p.add_argument("--until", help="last filing date (YYYY-MM-DD)")
    p.add_argument(
        "--identity", help='"Name email@example.com" for the SEC User-Agent (or $SEC_IDENTITY)'
    )
    p.add_argument("--http-cache", help="directory for cached raw EDGAR responses")
    p.add_argument("--no-prices", action="store_true", help="skip the price download")
    p.add_argument("--store")
    _add_config_args(p)
    p = add("files", cmd_ingest_files, "Your own filings: JSONL/CSV manifest or a directory.", isub)
    p.add_argument("path", help="manifest (.jsonl/.csv) or directory of .htm/.txt 8-K files")
    p.add_argument("--prices", help="prices CSV (ticker,date,close[,adj_close])")
    p.add_argument("--store")
    _add_config_args(p)
    p = add("prices", cmd_ingest_prices, "Daily prices from a CSV file or yfinance.", isub)
    p.add_argument("--csv", help="prices CSV (ticker,date,close[,adj_close])")
    p.add_argument("--tickers", help="comma-separated tickers for yfinance")
    p.add_argument("--since", help="first date for yfinance")
    p.add_argument("--source", choices=["csv", "yfinance"], default="csv")
    p.add_argument("--store")
    _add_config_args(p)

    p = add("events", cmd_events, "Compute day 0 and event-window abnormal returns in the store.")
    p.add_argument("--store")
    _add_config_args(p)

    corpus = add("corpus", None, "Inspect the corpus store.")
    csub = corpus.add_subparsers(dest="what", required=True, metavar="WHAT")
    p = add("stats", cmd_corpus_stats, "Counts by source, item and skip reason.", csub)
    p.add_argument("--store")
    _add_config_args(p)

    p = add("parse", cmd_parse, "Parse one 8-K file and show items, sections, exhibits.")
    p.add_argument("file")
    p.add_argument("--json", action="store_true")

    p = add("pairs", cmd_pairs, "Build contrastive pairs with time splits from the store.")
    p.add_argument("--out", required=True, help="output directory for {train,valid,test}.jsonl")
    p.add_argument("--store")
    _add_config_args(p)
    # `pairs stats DIR` is dispatched in main() to keep `pairs --out` flat.
    p.epilog = "`filingcontrast pairs stats DIR` summarizes a built pairs directory."

    p = add("train", cmd_train, "LoRA fine-tuning on a pairs directory.")
    p.add_argument("--pairs", required=True, help="pairs directory (train.jsonl, valid.jsonl)")
    p.add_argument("--out", help="run directory (default runs/<name>)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    _add_config_args(p)

    p = add("compare", cmd_compare, "Compare two filings: which had the better abnormal return?")
    p.add_argument("a", help="filing A: .htm/.txt file or store accession")
    p.add_argument("b", help="filing B: .htm/.txt file or store accession")
    p.add_argument("--adapter", help="run directory or adapter dir (omit for zero-shot)")
    p.add_argument(
        "--base",
        help="base model spec: zero-shot without --adapter; with one, must be the adapter's base",
    )
    p.add_argument("--store", help="store to resolve accession numbers")
    p.add_argument("--explain", action="store_true", help="also generate an analysis")
    p.add_argument("--json", action="store_true")

    p = add("rank", cmd_rank, "Rank many filings by pairwise verdicts (Bradley-Terry).")
    p.add_argument("files", nargs="+")
    p.add_argument("--adapter")
    p.add_argument(
        "--base",
        help="base model spec: zero-shot without --adapter; with one, must be the adapter's base",
    )
    p.add_argument("--store")
    p.add_argument("-k", type=int, default=4, help="comparisons per filing")
    p.add_argument("--json", action="store_true")

    p = add("evaluate", cmd_evaluate, "Evaluate an adapter on pairs against baselines.")
    p.add_argument("--adapter", required=True, help="run directory (runs/NAME)")
    p.add_argument("--pairs", required=True)
    p.add_argument("--split", choices=["valid", "test"])
    _add_config_args(p)

    p = add("report", cmd_report, "Write the self-contained HTML report of a run.")
    p.add_argument("run", help="run directory (runs/NAME)")

    p = add("demo", cmd_demo, "The whole pipeline offline on the simulated market.")
    p.add_argument("--quick", action="store_true", help="small smoke-test version (about a minute)")
    _add_config_args(p)
    return parser


MODEL_COMMANDS = frozenset({"train", "evaluate", "compare", "rank", "demo"})
"""Commands that run a model: started as a process, they restart themselves with mimalloc
preloaded (runtime.reexec_with_allocator; `FILINGCONTRAST_ALLOCATOR=system` keeps glibc)."""


def main(argv: list[str] | None = None) -> int:
    from_process = argv is None  # the process's entry point: may restart it with the allocator
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["pairs", "stats"]:
        stats = argparse.ArgumentParser(prog="filingcontrast pairs stats")
        stats.add_argument("dir")
        args = stats.parse_args(argv[2:])
        args.handler = cmd_pairs_stats
    else:
        args = build_parser().parse_args(argv)
    try:
        if from_process and getattr(args, "command", None) in MODEL_COMMANDS:
            runtime.reexec_with_allocator()
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `filingcontrast parse --json F | head`: the reader left early
        # Python would report the pipe again when it flushes stdout at exit: point it at null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # what a process killed by SIGPIPE exits with in a shell
    except OSError as exc:  # a user path that cannot be created or written (--out, --store)
        if exc.filename is None:
            raise
        print(f"error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # train's Stopped names the signal: 143 for SIGTERM
        print("interrupted", file=sys.stderr)
        return 128 + getattr(exc, "signum", 2)


if __name__ == "__main__":
    sys.exit(main())
