"""CLI: ``python -m rlhf.training <step> --spec spec.json [--result result.json]``.

Prints the JSON-lines protocol documented in :mod:`rlhf.training.specs` on stdout; every other
output goes to stderr. Exit codes: 0 done, 1 failure, 2 invalid spec, 143 cancelled (SIGTERM).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import traceback
from pathlib import Path

from rlhf.training.specs import SPEC_TYPES, STEPS, SpecError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_SPEC_ERROR = 2
EXIT_CANCELLED = 143


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    early_stop: list[int] = []
    signal.signal(
        signal.SIGTERM, lambda signum, frame: early_stop.append(signum)
    )  # until Events exists

    from rlhf.training.progress import Cancelled, Events, redirect_stdout_to_stderr

    protocol = redirect_stdout_to_stderr()
    events = Events(protocol)
    events.install_sigterm_handler()
    if early_stop:
        events.request_stop()

    parser = argparse.ArgumentParser(prog="python -m rlhf.training", description=__doc__)
    parser.add_argument("step", choices=STEPS)
    parser.add_argument("--spec", required=True, help="path to the step's spec JSON file")
    parser.add_argument("--result", help="also write the result JSON to this file")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        events.emit({"event": "error", "message": "invalid command line (see stderr)"})
        return EXIT_SPEC_ERROR if exc.code else EXIT_OK

    try:
        spec = SPEC_TYPES[args.step].from_json(Path(args.spec))
        events.check()
        module = importlib.import_module(f"rlhf.training.{args.step}")
        events.check()
        result = module.run(spec, events)
        payload = result.to_dict()
        if args.result:
            Path(args.result).write_text(
                json.dumps(payload, indent=2, sort_keys=True), encoding="utf-8"
            )
        events.emit({"event": "result", "result": payload})
        return EXIT_OK
    except SpecError as exc:
        events.emit({"event": "error", "message": str(exc)})
        return EXIT_SPEC_ERROR
    except Cancelled:
        events.emit({"event": "cancelled"})
        return EXIT_CANCELLED
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        events.emit({"event": "error", "message": f"{type(exc).__name__}: {exc}"})
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
