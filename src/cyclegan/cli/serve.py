"""`cyclegan serve`."""

from __future__ import annotations

import argparse
import os
import sys

from .options import add_device, add_tile

EPILOG = """examples:
  cyclegan serve runs/maps                               translate page + training dashboard of runs/maps
  cyclegan serve runs/maps latest_net_G_A.pth horse2zebra --test-images photos/
  cyclegan serve --study study.yaml                      perceptual study (admin link printed at start)
pages: / (translate), /dashboard (training), /study/admin (study results, needs the admin token)."""

MISSING_EXTRA = "the web app needs FastAPI, uvicorn and python-multipart: pip install 'cyclegan[serve]'"


def add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="local web app: translate in the browser, watch training, run a real-vs-fake study",
        description="A local web app with three pages: translate an image with any of the given models; a "
        "live dashboard of the given run dirs (losses, samples, progress); and, with --study, the papers' "
        "real-vs-fake perceptual study (participant links, results, CSV).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sources", nargs="*", metavar="RUN_DIR_OR_MODEL",
                   help="run dirs (dashboard + both generators), generator .pth files or pretrained names")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--study", metavar="STUDY.yaml", help="a perceptual study definition (see README)")
    p.add_argument("--admin-token", metavar="TOKEN",
                   help="study admin token (default: $CYCLEGAN_ADMIN_TOKEN, else a random one printed at start)")
    p.add_argument("--test-images", action="append", default=[], metavar="DIR",
                   help="a folder of images offered on the translate page (repeatable)")
    p.add_argument("--max-upload-mb", type=float, default=20, help="largest accepted upload (default 20 MB)")
    p.add_argument("--max-pixels", type=int, default=36_000_000,
                   help="largest accepted image, width x height (default 36000000)")
    p.add_argument("--max-active", type=int, default=1, metavar="N",
                   help="translations running at once (default 1; memory grows with it, see README)")
    p.add_argument("--max-waiting", type=int, default=4, metavar="N",
                   help="translations waiting for a slot; more are answered 503 + Retry-After (default 4)")
    p.add_argument("--max-seconds", type=float, default=300, metavar="S",
                   help="a translation running longer is stopped (default 300)")
    add_tile(p, default=512)
    add_device(p)
    p.set_defaults(run=cmd_serve)


def cmd_serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:  # lazy: keeps --help fast, and working without the serve extra
        import fastapi  # noqa: F401
        import multipart  # noqa: F401  (python-multipart: form uploads)
        import uvicorn  # optional dependency (the serve extra)
    except ImportError:
        print(f"cyclegan: error: {MISSING_EXTRA}", file=sys.stderr)
        return 1
    # lazy: keeps --help fast
    from ..serve.app import LOOPBACK_HOSTS, create_app
    from ..serve.security import Limits
    from ..device import resolve_device

    if not args.sources and not args.study:
        parser.error("give at least one run dir or model, or --study")
    if args.max_upload_mb <= 0 or args.max_pixels <= 0 or args.tile < 64:
        parser.error("--max-upload-mb and --max-pixels must be positive, --tile at least 64")
    if args.max_active < 1 or args.max_waiting < 0 or not args.max_seconds > 0:
        parser.error("--max-active must be at least 1, --max-waiting at least 0, --max-seconds positive")
    limits = Limits(max_upload_bytes=int(args.max_upload_mb * 2**20), max_pixels=args.max_pixels,
                    max_active=args.max_active, max_waiting=args.max_waiting, max_seconds=args.max_seconds)
    loopback = args.host in LOOPBACK_HOSTS
    app = create_app(
        args.sources, study=args.study, admin_token=args.admin_token or os.environ.get("CYCLEGAN_ADMIN_TOKEN"),
        limits=limits, test_images=args.test_images, device=resolve_device(args.device), tile=args.tile,
        allowed_hosts=list(LOOPBACK_HOSTS) if loopback else None,  # refuses DNS rebinding
    )
    host = f"[{args.host}]" if ":" in args.host else args.host
    base = f"http://{host}:{args.port}"
    if not loopback:
        print(f"cyclegan: warning: serving on {args.host}: anyone who can reach this machine can use the app "
              "(translate, dashboard, participant links); use --host 127.0.0.1 unless you mean it", file=sys.stderr)
    print(f"translate:  {base}/\ndashboard:  {base}/dashboard", flush=True)
    if args.study:
        print(f"study admin: {base}/study/admin#token={app.state.admin_token}  (keep this link private)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
