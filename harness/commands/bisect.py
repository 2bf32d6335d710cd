"""`bisect GOOD BAD`: the first commit between them that made the grid slower, step by step."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.commands import ab as ab_command
from harness.commands.common import add_cell_filters, add_results, add_verdict_options, seconds
from harness.commands.compare import check_markdown
from harness.compare import bisect
from harness.results import git
from harness.results.atomic import write_atomic
from harness.results.store import RESULTS

# Each step doubles an inconclusive step's runs, pooled with the earlier ones: 12, 24, 48.
MAX_FACTOR = 4
COUNTED_REPEATS = 2  # instruction counts agree to the instruction: two runs show they do


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "bisect",
        help="find the first commit between GOOD and BAD that made the grid slower",
        description="Walk BAD's first parents back to GOOD: check that GOOD is faster than "
        "BAD, then run the commit midway between the newest known good and the oldest known "
        "bad interleaved with GOOD and BAD (each in its own worktree, as `ab`), judge it with "
        "`compare`'s statistics, and halve, until one commit is the first bad one. The state "
        "is stored after every step: rerunning the command continues it. An inconclusive "
        "step is repeated with twice the runs, pooled, up to --max-repeats. Exit code 0 with "
        "a first bad commit named, 1 when there is none to name (GOOD not faster, or a step "
        "that stayed inconclusive), 2 on an error.",
        epilog="Example: `python -m harness bisect v1.2 main --workload xor --impl numpy "
        "--no-build`.",
    )
    parser.add_argument("good", metavar="GOOD", nargs="?", help="the faster, older commit")
    parser.add_argument("bad", metavar="BAD", nargs="?", help="the slower, newer commit")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue a stored bisect with the options it was started with: the one under "
        "--results, else the newest unfinished one under results/bisect/ (GOOD BAD optional)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        metavar="N",
        help=f"runs of each commit in a step, interleaved (default {ab_command.REPEATS}, as "
        f"`ab`; {COUNTED_REPEATS} with --instructions; at least 2: a step never trusts one run)",
    )
    parser.add_argument(
        "--max-repeats",
        type=int,
        default=None,
        metavar="N",
        help=f"runs a side an inconclusive step may grow to (default {MAX_FACTOR}x --repeats)",
    )
    add_results(
        parser,
        "where the runs and the bisect's state (bisect.json) are stored",
        "results/bisect/<good>-<bad>/, outside the summary report's reach",
    )
    parser.add_argument("--no-build", action="store_true", help="as for `ab`")
    add_verdict_options(parser)
    add_cell_filters(parser)
    parser.add_argument("--full", action="store_true", help="as for `ab`")
    parser.add_argument("--instructions", action="store_true", help="as for `ab`")
    parser.add_argument(
        "--time-per-cell", type=seconds, default=None, metavar="S", help="as for `ab`"
    )
    parser.set_defaults(func=run)


def settings(args) -> dict:
    """What a bisect's steps run and how they are judged: stored with its state."""
    # `is None`, not `or`: a --repeats 0 given is refused by bisect.start, not replaced
    repeats = args.repeats
    if repeats is None:
        repeats = COUNTED_REPEATS if args.instructions else ab_command.REPEATS
    return {
        "run_args": ab_command.run_arguments(args),
        "repeats": repeats,
        "max_repeats": MAX_FACTOR * repeats if args.max_repeats is None else args.max_repeats,
        "threshold": args.threshold,
        "confidence": args.confidence,
        "count_threshold": args.count_threshold,
        "fdr": args.fdr,
        "build_ext": not args.no_build,
    }


def _newest_unfinished() -> Path:
    stored = [p for p in (RESULTS / "bisect").glob(f"*/{bisect.STATE}") if p.is_file()]
    unfinished = [p for p in stored if not bisect.load(p)["outcome"]]
    if not unfinished:
        raise ValueError(
            f"--resume: no unfinished bisect under {RESULTS / 'bisect'} "
            "(start one with `python -m harness bisect GOOD BAD`)"
        )
    return max(unfinished, key=lambda p: p.stat().st_mtime)


def _state(args) -> tuple:
    """-> (the state, where it is stored): a new one, or the stored one it continues."""
    if (args.good is None) != (args.bad is None) or (args.good is None and not args.resume):
        raise ValueError("bisect needs GOOD and BAD (or --resume, to continue a stored bisect)")
    if args.good is None:
        path = Path(args.results) / bisect.STATE if args.results else _newest_unfinished()
        if not path.is_file():
            raise ValueError(f"--resume: no bisect stored at {path}")
        return bisect.load(path), path
    good, bad = git.resolve(args.good), git.resolve(args.bad)
    path = Path(args.results or RESULTS / "bisect" / f"{good[:7]}-{bad[:7]}") / bisect.STATE
    wanted = settings(args)
    if not path.is_file():
        if args.resume:
            raise ValueError(f"--resume: no bisect stored at {path}")
        return bisect.start(good, bad, wanted, (args.good, args.bad)), path
    state = bisect.load(path)
    if (state["good"], state["bad"]) != (good, bad):
        raise ValueError(
            f"{path} holds the bisect of {state['good'][:10]}..{state['bad'][:10]}, not of "
            f"{good[:10]}..{bad[:10]}: give another --results"
        )
    changed = sorted(k for k in wanted if wanted[k] != state["settings"].get(k))
    if changed and not args.resume:
        was = ", ".join(f"{k}={state['settings'].get(k)!r}" for k in changed)
        raise ValueError(
            f"{path} was started with {was}: give the same options to continue it, --resume "
            "to continue it with its own, or another --results to start anew"
        )
    return state, path


def _evidence(e: dict | None) -> str:
    if not e or e["ratio"] is None:
        return e["verdict"] if e else "absent"
    q = "" if e["q"] is None else f" q={e['q']:.2g}"
    return f"{e['ratio']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}]{q} {e['verdict']}"


def cell_name(cell: dict) -> str:
    return " ".join(str(cell[k]) for k in ("impl", "workload", "size", "phase"))


def step_lines(state: dict, record: dict) -> list:
    """A step in words: what ran, its call, and each tracked cell's ratios."""
    number = state["steps"].index(record) + 1
    runs = f"{record['repeats']} runs a side"
    if record["kind"] == "check":
        slower = f" in {len(record['cells'])} cells" if record["call"] == "slower" else ""
        head = (
            f"step {number}: BAD {state['bad'][:10]} against GOOD {state['good'][:10]}, "
            f"{runs}: {record['call']}{slower}"
        )
        cells = (
            f"  {cell_name(c['cell'])}: BAD/GOOD {_evidence(c['vs_good'])}" for c in record["cells"]
        )
        return [head, *cells]
    commit = record["commit"]
    lines = [
        f"step {number}: commit {record['index'] + 1}/{len(state['commits'])} {commit[:10]} "
        f"{bisect.subject(commit)!r}, {runs}: {record['call']}"
    ]
    return lines + [
        f"  {cell_name(c['cell'])}: C/GOOD {_evidence(c['vs_good'])}; "
        f"C/BAD {_evidence(c['vs_bad'])}: {c['call']}"
        for c in record["cells"]
    ]


def outcome_line(state: dict) -> str:
    outcome, steps = state["outcome"], len(state["steps"])
    runs = sum(len(ids) for s in state["steps"] for ids in s["runs"].values())
    if outcome["status"] == "found":
        sha = outcome["first_bad"]
        return (
            f"first bad commit: {sha} {bisect.subject(sha)!r} (commit {outcome['index'] + 1} "
            f"of {len(state['commits'])}; the one before it, {outcome['last_good'][:10]}, is "
            f"good), after {steps} steps and {runs} runs"
        )
    if outcome["status"] == "no regression":
        return (
            f"GOOD {state['good'][:10]} is not faster than BAD {state['bad'][:10]}: no cell of "
            "the grid is slower at BAD (step 1 shows the nearest), so there is nothing to "
            "bisect; widen the grid (--impl, --workload) or give more --repeats"
        )
    last = state["steps"][-1]
    if last["kind"] == "check":
        return (
            f"gave up on the check of BAD {state['bad'][:10]} against GOOD "
            f"{state['good'][:10]}: still inconclusive with {last['repeats']} runs a side "
            "(--max-repeats): no cell is slower at BAD, but the interval of those above still "
            "reaches past the threshold, so a slowdown is not ruled out; run it on a quieter "
            "machine or give more --max-repeats"
        )
    return (
        f"gave up at commit {last['commit'][:10]} {bisect.subject(last['commit'])!r}: still "
        f"inconclusive with {last['repeats']} runs a side (--max-repeats) after {steps} steps; "
        "its cells (above) are each the same as both ends, or slower or faster than both, or "
        "some call it good and others bad (two regressions: bisect each alone with --impl or "
        "--workload)"
    )


def markdown(state: dict) -> str:
    rows = [
        f"| {n} | {r['commit'][:10]} | {r['repeats']} | {r['call']} | "
        + "<br>".join(line.strip().replace("|", "\\|") for line in step_lines(state, r)[1:])
        + " |"
        for n, r in enumerate(state["steps"], 1)
    ]
    return "\n".join(
        [
            f"**bisect {state['good'][:10]}..{state['bad'][:10]}**: {outcome_line(state)}",
            "",
            "| step | commit | runs a side | call | tracked cells |",
            "| --- | --- | --- | --- | --- |",
            *rows,
        ]
    )


def run(args) -> int:
    # SIGTERM (a CI job's cancel) unwinds as Stopped (cli.py): the worktrees go, the state
    # of the steps done stays, and the same command continues from it.
    check_markdown(args)
    state, path = _state(args)
    done = len(state["steps"])
    good, bad, refs = state["good"][:10], state["bad"][:10], state["refs"]
    print(
        f"bisect: {len(state['commits'])} commits after GOOD {refs[0]} ({good}) up to BAD "
        f"{refs[1]} ({bad}); state: {path}" + (f" ({done} steps stored)" if done else "")
    )
    for record in state["steps"]:
        print("\n".join(step_lines(state, record)))
    try:
        state = bisect.run(
            state, path, on_step=lambda s, record: print("\n".join(step_lines(s, record)))
        )
    except RuntimeError as error:  # a worktree, build or run that failed: say which and why
        print(f"error: {error}\nthe steps done are stored in {path}", file=sys.stderr)
        return 2
    print(outcome_line(state))
    if args.markdown:
        written = write_atomic(args.markdown, markdown(state) + "\n")
        print(f"markdown: {written}")
    return 0 if state["outcome"]["status"] == "found" else 1
