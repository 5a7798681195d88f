"""``python -m airflow_provider_braze.sandbox``: serve the Braze sandbox in the foreground."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import NoReturn

from airflow_provider_braze.sandbox.server import LOOPBACK, serve_forever
from airflow_provider_braze.sandbox.state import (
    ALL_PERMISSIONS,
    DEFAULT_BEHAVIOURS,
    UNDOCUMENTED_BEHAVIOURS,
    Faults,
    SandboxState,
)


def _parse_key(text: str) -> tuple[str, list[str] | None]:
    key, sep, perms = text.partition(":")
    if not key:
        raise argparse.ArgumentTypeError("expected KEY or KEY:perm1,perm2")
    return key, ([p for p in perms.split(",") if p] if sep else None)


def _parse_rate_limit(text: str) -> tuple[str, tuple[int, int]]:
    name, _, spec = text.partition("=")
    limit, _, seconds = spec.partition("/")
    try:
        return name, (int(limit), int(seconds))
    except ValueError:
        raise argparse.ArgumentTypeError("expected NAME=LIMIT/SECONDS, e.g. shared=600/60") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_braze.sandbox",
        description="Serve a local Braze-compatible REST API for tests and example DAGs.",
    )
    parser.add_argument("--host", default=LOOPBACK, help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    parser.add_argument("--api-key", help="the primary API key (all permissions); random if omitted")
    parser.add_argument(
        "--key",
        action="append",
        default=[],
        type=_parse_key,
        metavar="KEY[:PERMS]",
        help=f"an extra API key with comma-separated permissions (known: {', '.join(ALL_PERMISSIONS)})",
    )
    parser.add_argument(
        "--campaign",
        action="append",
        default=[],
        metavar="ID[:KIND]",
        help="an extra campaign; KIND is api (default) or api_triggered",
    )
    parser.add_argument("--send-id-daily-limit", type=int, default=100, help="(default: %(default)s)")
    parser.add_argument(
        "--rate-limit",
        dest="rate_limits",
        action="append",
        default=[],
        type=_parse_rate_limit,
        metavar="NAME=LIMIT/SECONDS",
        help="a rate-limit bucket: shared (default 250000/3600), broadcast (250/60), broadcast_audience "
        "(10/60, per unique audience) or send_id (100/86400)",
    )
    parser.add_argument("--seed", type=int, help="seed for fault injection and generated IDs")
    parser.add_argument(
        "--send-id-recreate",
        choices=UNDOCUMENTED_BEHAVIOURS["send_id_recreate"],
        default=DEFAULT_BEHAVIOURS["send_id_recreate"],
        help="re-creating an existing send ID (undocumented by Braze): counts toward the quota, "
        "succeeds for free, or is refused (default: %(default)s)",
    )
    parser.add_argument(
        "--unknown-send-id",
        choices=UNDOCUMENTED_BEHAVIOURS["unknown_send_id"],
        default=DEFAULT_BEHAVIOURS["unknown_send_id"],
        help="a send with a send ID never created for its campaign (undocumented by Braze) is refused "
        "or accepted (default: %(default)s)",
    )
    parser.add_argument(
        "--analytics-series",
        choices=UNDOCUMENTED_BEHAVIOURS["analytics_series"],
        default=DEFAULT_BEHAVIOURS["analytics_series"],
        help="/sends/data_series covers the whole requested window with zeros, or starts on the "
        "first day with a send (undocumented by Braze) (default: %(default)s)",
    )
    parser.add_argument(
        "--analytics-variation-key",
        choices=UNDOCUMENTED_BEHAVIOURS["analytics_variation_key"],
        default=DEFAULT_BEHAVIOURS["analytics_variation_key"],
        help="how send analytics name a variation (Braze documents both) (default: %(default)s)",
    )
    parser.add_argument(
        "--scheduled-broadcast-pool",
        choices=UNDOCUMENTED_BEHAVIOURS["scheduled_broadcast_pool"],
        default=DEFAULT_BEHAVIOURS["scheduled_broadcast_pool"],
        help="broadcasts scheduled through /campaigns/trigger/schedule/create count against the shared "
        "hourly pool or the broadcast limits (Braze's pages disagree) (default: %(default)s)",
    )
    # The open points of Braze's docs added with issue 17 (see UNDOCUMENTED_BEHAVIOURS).
    for name, text in (
        ("send_id_recreate_wording", "the words of a refusal to re-create a send ID"),
        ("send_id_quota", "which /sends/id/create requests count toward the 100 a day"),
        ("send_id_quota_day", "when the day of the send ID quota starts"),
        ("send_tracking", "whether a send ID's analytics are kept for sends to listed users"),
        ("local_time_passed", "when a local-time schedule has passed (see also --company-time-zone)"),
        ("data_series_unknown_send_id", "how /sends/data_series answers a send ID never created"),
        ("data_series_triggered_campaign", "how /sends/data_series answers an API-triggered campaign"),
        ("data_series_scheduled_sends", "whether scheduled sends have send analytics"),
        (
            "alias_send_to_existing_only",
            "whether an alias recipient may carry send_to_existing_only (Braze's pages disagree)",
        ),
    ):
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            choices=UNDOCUMENTED_BEHAVIOURS[name],
            default=DEFAULT_BEHAVIOURS[name],
            help=f"{text} (undocumented by Braze) (default: %(default)s)",
        )
    parser.add_argument(
        "--company-time-zone",
        default="UTC",
        metavar="ZONE",
        help="the company's time zone, an IANA name (default: %(default)s)",
    )
    parser.add_argument(
        "--clock-offset",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="run the sandbox's clock this far ahead of the machine's (negative: behind), to test "
        "clients whose clock differs from Braze's",
    )
    faults = parser.add_argument_group("fault injection (probabilities per request, 0..1)")
    faults.add_argument("--latency-ms", type=float, default=0.0)
    faults.add_argument("--p-429", dest="rate_limit", type=float, default=0.0)
    faults.add_argument("--p-5xx", dest="server_error", type=float, default=0.0)
    faults.add_argument("--p-drop-before", dest="drop_before", type=float, default=0.0)
    faults.add_argument("--p-drop-after", dest="drop_after", type=float, default=0.0)
    faults.add_argument(
        "--p-unreadable-success",
        dest="unreadable_success",
        type=float,
        default=0.0,
        help="process the request, then answer 2xx with an empty or HTML body",
    )
    faults.add_argument(
        "--p-nonfatal-errors",
        dest="nonfatal_errors",
        type=float,
        default=0.0,
        help="answer successful sends with non-fatal errors",
    )
    faults.add_argument("--p-slow", dest="slow", type=float, default=0.0, help="answer after --slow-ms")
    faults.add_argument("--slow-ms", type=float, default=5_000.0)
    parser.add_argument("--ready-file", help="write the URL and API key as JSON here once serving")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}; the sandbox has no real security", file=sys.stderr)
    try:
        state = SandboxState(
            args.api_key,
            faults=Faults(
                latency_ms=args.latency_ms,
                rate_limit=args.rate_limit,
                server_error=args.server_error,
                drop_before=args.drop_before,
                drop_after=args.drop_after,
                unreadable_success=args.unreadable_success,
                nonfatal_errors=args.nonfatal_errors,
                slow=args.slow,
                slow_ms=args.slow_ms,
            ),
            seed=args.seed,
            clock_offset=args.clock_offset,
            behaviours={name: getattr(args, name) for name in UNDOCUMENTED_BEHAVIOURS},
            company_time_zone=args.company_time_zone,
            send_id_daily_limit=args.send_id_daily_limit,
            rate_limits=dict(args.rate_limits),
        )
        for key, perms in args.key:
            state.add_key(key, permissions=perms)
        for spec in args.campaign:
            campaign_id, _, kind = spec.partition(":")
            state.add_campaign(campaign_id, kind or "api")
    except ValueError as err:
        build_parser().error(str(err))

    def _terminate(signum: int, frame: object) -> NoReturn:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    if not 0 <= args.port <= 65535:
        build_parser().error(f"--port must be between 0 and 65535, got {args.port}")
    try:
        serve_forever(
            args.host,
            args.port,
            state=state,
            announce=lambda s: print(s, flush=True),
            ready_file=args.ready_file,
        )
    except OSError as err:
        # Port in use, an address this machine does not have...: one line, not a traceback.
        print(
            f"braze sandbox: cannot listen on {args.host}:{args.port}: {err.strerror or err}", file=sys.stderr
        )
        sys.exit(1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
