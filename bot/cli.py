"""`hitl-chatops`: serve the bot, list pending events, count decisions, check a policy file, or run the local demo."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import secrets
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hitl_chatops

from . import adapter, registry
from .config import load_settings
from .errors import ConfigError, UserError
from .history import MAX_STATS_DAYS, RESULTS, EventStats, Span
from .logs import setup_logging
from .policy import Match, Policy, configured_policy, load_policy
from .protocol import format_time, utcnow
from .text import clip, format_duration

if TYPE_CHECKING:
    from .service import HitlService

__all__ = ["main"]

DEMO_WORKFLOW = Path("examples") / "add_with_human.py"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigError as error:
        sys.stderr.write(f"hitl-chatops: {error}\n")
        return 2
    except UserError as error:  # storage unreachable, say
        sys.stderr.write(f"hitl-chatops: {error}\n")
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hitl-chatops", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {hitl_chatops.__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    labels = ", ".join(r.label for r in registry.registrations())
    serve = commands.add_parser("serve", help=f"run the bot (HTTP server, {labels})")
    serve.add_argument("--host", help="address to bind (HITL_CHATOPS_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (HITL_CHATOPS_PORT, default 8080)")
    serve.add_argument(
        "--metrics-port", type=int, help="also serve /metrics without a token on this port (HITL_CHATOPS_METRICS_PORT)"
    )
    for registration in _local_modes():
        serve.add_argument(
            f"--{registration.name}",
            action="store_true",
            help=f"enable {registration.label} without credentials (local development only)",
        )
    serve.set_defaults(run=_serve)

    pending = commands.add_parser("pending", help="list pending events as a table")
    pending.set_defaults(run=_pending)

    stats = commands.add_parser("stats", help="how events ended and how long decisions took, per event name")
    stats.add_argument("--since", default="7d", help='an ISO 8601 time or date, or a duration ago ("24h"; default 7d)')
    stats.add_argument("--until", help="the same, for the end (default: now); at most 92 days after --since")
    stats.set_defaults(run=_stats)

    policy = commands.add_parser("policy", help="work with a policy file (HITL_CHATOPS_POLICY)")
    check = policy.add_subparsers(required=True, metavar="COMMAND").add_parser(
        "check", help="validate a policy file and print what it would do"
    )
    check.add_argument("file", help="path or fsspec URL of the YAML file")
    check.add_argument("--project", help="show what happens to an event in this Flyte project")
    check.add_argument("--domain", help="... in this Flyte domain")
    check.add_argument("--event", help="... named this")
    check.set_defaults(run=_policy_check)

    demo = commands.add_parser("demo", help="start a bot and run the example workflow as a local Flyte run")
    demo.add_argument("--workflow", type=Path, default=DEMO_WORKFLOW, help="file defining the task `main`")
    demo.add_argument("--port", type=int, default=0, help="port for the demo bot (default: a free one)")
    demo.set_defaults(run=_demo)
    return parser


def _serve(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {"host": args.host, "port": args.port, "metrics_port": args.metrics_port}
    for registration in _local_modes():
        if getattr(args, registration.name):
            overrides.update(adapter.load(registration).local)
    settings = adapter.load_bot_settings(**overrides)
    settings.secret_value()  # fail now, with the variable's name, not on the first request
    if settings.policy:  # the plugin applies it; a bad file is said at start, not at the next event
        configured_policy(settings.policy)
    setup_logging(settings.log_format)
    from .server import serve

    asyncio.run(serve(settings))
    return 0


def _local_modes() -> list[registry.Registration]:
    """Platforms with a mode for a developer machine: `serve --<name>` turns it on."""
    return [r for r in registry.registrations() if adapter.load(r).local]


def _reader() -> HitlService:
    """The service over the store alone (HITL_CHATOPS_STORE), for commands that only read: reading signs and
    checks nothing, so the secret the service would use for form links is not needed."""
    settings = load_settings()
    from .service import HitlService
    from .store import Store

    return HitlService(Store(settings.store), secret="", form_base_url=settings.form_base_url())


def _pending(_: argparse.Namespace) -> int:
    """The open events as a table; needs only the store (HITL_CHATOPS_STORE), not the bot's secret."""
    events = asyncio.run(_reader().pending())
    if not events:
        print("No pending events.")  # noqa: T201 - this command's output is the table
        return 0
    rows = [
        (e.request_id, e.event_name, e.data_type, format_time(e.deadline), clip(" ".join(e.prompt.split()), 60))
        for e in events
    ]
    _print_table(("REQUEST ID", "EVENT", "TYPE", "DEADLINE", "PROMPT"), rows)
    return 0


def _stats(args: argparse.Namespace) -> int:
    """`GET /api/v1/stats` as a table, read from the store alone (like `pending`)."""
    try:
        span = Span.parse(args.since, args.until, utcnow(), days=MAX_STATS_DAYS, names=("--since", "--until"))
    except ValueError as error:
        raise ConfigError(str(error)) from None
    found = asyncio.run(_reader().stats(span))
    assert span.since is not None and span.until is not None
    between = f"from {format_time(span.since)} to {format_time(span.until)}"
    if not found:
        print(f"No event ended {between}.")  # noqa: T201 - this command's output is the table
        return 0
    print(f"Events that ended {between}.")  # noqa: T201
    print("P50, P90, MAX: time from creation to a decision (completed or rejected).\n")  # noqa: T201
    header = ("EVENT", *(r.upper() for r in RESULTS), "P50", "P90", "MAX")
    _print_table(header, [_stats_row(s) for s in found], numeric=range(1, len(header)))
    return 0


def _stats_row(stats: EventStats) -> tuple[str, ...]:
    timing = stats.decision
    times = ("-",) * 3 if timing is None else tuple(map(format_duration, (timing.p50, timing.p90, timing.max)))
    return (clip(stats.event_name, 40) or "(no name)", *(str(stats.outcomes[r]) for r in RESULTS), *times)


def _print_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]], numeric: Iterable[int] = ()) -> None:
    """Columns wide enough for their cells, two spaces apart; `numeric` columns aligned right."""
    right = set(numeric)
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        cells = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        print("  ".join(cells).rstrip())  # noqa: T201 - the table is the command's output


def _policy_check(args: argparse.Namespace) -> int:
    """The file checked (a bad one is a one-line error naming the line), then what it does: to the event
    described by --project/--domain/--event if any is given, else rule by rule."""
    policy = load_policy(args.file)
    count = len(policy.rules)
    lines = [f"{args.file}: valid, {count} rule{'' if count == 1 else 's'}."]
    if args.project is None and args.domain is None and args.event is None:
        lines += _every_rule(policy)
    else:
        lines += _one_event(policy, args.project, args.domain, args.event)
    print("\n".join(lines))  # noqa: T201 - this command's output is the report
    return 0


def _every_rule(policy: Policy) -> list[str]:
    lines = []
    for number, rule in enumerate(policy.rules, 1):
        lines.append(f"{number}. {rule.name} ({_match_text(rule.match)}):")
        lines += [f"   - {effect}" for effect in rule.describe()]
    return lines


def _one_event(policy: Policy, project: str | None, domain: str | None, event: str | None) -> list[str]:
    scope = ", ".join(f"{key} {value}" for key, value in (("project", project), ("domain", domain)) if value)
    asked = f"An event{f' named {event}' if event else ''}{f' in {scope}' if scope else ''}"
    rule = policy.rule_for(project, domain, event or "")
    if rule is None:
        return [f"{asked} matches no rule: the task's own settings apply."]
    return [f"{asked} matches rule {rule.name}, which:", *(f"  - {effect}" for effect in rule.describe())]


def _match_text(match: Match) -> str:
    keys = [f"{key} {value}" for key, value in match.model_dump().items() if value != "*"]
    return ", ".join(keys) or "every event"


def _demo(args: argparse.Namespace) -> int:
    """Start a bot on loopback, then run the seed-style workflow and wait for the answer."""
    workflow = _load_workflow(args.workflow)
    overrides: dict[str, Any] = {"host": "127.0.0.1", "port": args.port, "log_format": "text"}
    if not os.environ.get("HITL_CHATOPS_SECRET"):
        os.environ["HITL_CHATOPS_SECRET"] = secrets.token_urlsafe(32)  # the plugin reads it too
    settings = adapter.load_bot_settings(**overrides)
    from .server import BotThread

    bot = BotThread(settings).start()
    os.environ["HITL_CHATOPS_URL"] = bot.url
    _say(f"Bot running at {bot.url} (store: {settings.store})")
    _say("Starting the workflow; open the link below to answer.")
    import flyte

    flyte.init()
    try:
        run = flyte.run(workflow)
        run.wait()
        _say(f"Workflow finished. Result: {_outputs(run)}")
    finally:
        bot.stop()
    return 0


def _load_workflow(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(
            f"No workflow at {path}: run `hitl-chatops demo` from the repository root or pass --workflow."
        )
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    if not hasattr(module, "main"):
        raise ConfigError(f"{path} defines no task named `main`.")
    return module.main


def _outputs(run: Any) -> Any:
    outputs = run.outputs()
    return outputs[0] if isinstance(outputs, tuple | list) and len(outputs) == 1 else outputs


def _say(text: str) -> None:
    print(f"hitl-chatops: {text}", flush=True)  # noqa: T201 - the demo talks to a person


if __name__ == "__main__":
    raise SystemExit(main())
