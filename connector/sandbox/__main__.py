"""`python -m connector.sandbox`: serve the sandbox on loopback until interrupted."""

from __future__ import annotations

import argparse

from connector.sandbox import serve


def main(argv: list[str] | None = None) -> None:
    """Parse the few options `serve` takes and run it."""
    parser = argparse.ArgumentParser(prog="python -m connector.sandbox",
                                     description="Serve the connector's sandbox of Amazon "
                                                 "SP-API, VTEX and Adobe Commerce.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds added before every response")
    parser.add_argument("--rate-limits", action="store_true",
                        help="apply SP-API's published rate limits")
    parser.add_argument("--orders", default="scenarios",
                        help="'scenarios', 'empty', or a number of generated orders")
    args = parser.parse_args(argv)
    orders: str | int = int(args.orders) if args.orders.isdigit() else args.orders
    serve(args.host, args.port, latency=args.latency, rate_limits=args.rate_limits,
          orders=orders)


if __name__ == "__main__":
    main()
