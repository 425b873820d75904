"""Run the Xprizo simulator: `python -m simulator --port 8099 --account-id 1`."""

import argparse
import logging
import os

from simulator.server import serve


def main() -> None:
    """Parse arguments and run the simulator until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument(
        "--api-key",
        default=os.environ.get("SIMULATOR_API_KEY", "simulator-key"),
        help="key the simulator expects in x-api-key (env SIMULATOR_API_KEY)",
    )
    parser.add_argument("--account-id", type=int, default=1)
    parser.add_argument("--callback-delay", type=float, default=2.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    serve(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        account_id=args.account_id,
        callback_delay=args.callback_delay,
    )


if __name__ == "__main__":
    main()
