"""The original LLM Sizer as an external calculator (protocol ``llmsizer-calculator/1``).

    pytest profiles/ --llmsizer-calculator-cmd \
        "python -m pytest_llmsizer.adapters.llm_sizer --llm-sizer-dir ~/src/llm-sizer"
    llmsizer validate PROFILE --calculator-cmd "python -m pytest_llmsizer.adapters.llm_sizer"   # $LLM_SIZER_DIR

It reads one request on stdin and prints one answer on stdout, like any calculator command. The checkout is the
user's own (``git clone https://github.com/AMD-melliott/llm-sizer && npm ci``): nothing of LLM Sizer is vendored
here. Finding the profile's model and GPU in LLM Sizer's catalogs is in ``llm_sizer_catalog``; the rest of its
inputs, and which quantities are returned, in ``llm_sizer_mapping``; how it is run and cached, in ``llm_sizer_run``.

Exit status 0 with an answer or ``{"error": ...}`` (a profile LLM Sizer cannot answer for, such as a model not in
its catalog); 2 with one line on stderr for a configuration problem (no checkout, no ``npm ci``, Node failing),
which the plugin reports as that profile's failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pytest_llmsizer.adapters.llm_sizer_catalog import Decline
from pytest_llmsizer.adapters.llm_sizer_mapping import answer_from, plan_for
from pytest_llmsizer.adapters.llm_sizer_run import (
    ENV_DIR,
    AnswerCache,
    SizerRunError,
    calculate_cached,
    default_cache_dir,
    fingerprint,
    locate_checkout,
    read_catalog,
)

PROTOCOL = "llmsizer-calculator/1"


def answer(request: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The protocol answer for one request (raises ``SizerRunError`` for configuration problems)."""
    if not isinstance(request, dict) or request.get("protocol") != PROTOCOL:
        got = request.get("protocol") if isinstance(request, dict) else type(request).__name__
        return {"error": f"this adapter speaks {PROTOCOL}, not {got!r}"}
    root = locate_checkout(args.llm_sizer_dir)
    try:
        plan = plan_for(request, read_catalog(root))
    except Decline as e:
        return {"error": str(e)}
    cache = None if args.no_cache else AnswerCache(args.cache_dir or default_cache_dir(), fingerprint(root))
    options = plan.inputs.options()
    (result,) = calculate_cached(root, [options], cache, timeout_s=args.timeout, node=args.node)
    if "error" in result:
        return {"error": f"LLM Sizer: {result['error']}"}
    try:
        return answer_from(result["result"], plan)
    except ValueError as e:
        return {"error": str(e)}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pytest_llmsizer.adapters.llm_sizer",
        description="The original LLM Sizer as a pytest-llmsizer external calculator (llmsizer-calculator/1): "
                    "one JSON request on stdin, one JSON answer on stdout.")
    p.add_argument("--llm-sizer-dir", metavar="DIR",
                   help=f"the LLM Sizer checkout, after `npm ci` (default: ${ENV_DIR})")
    p.add_argument("--timeout", type=float, default=30, metavar="S",
                   help="seconds Node may take for one call before it is killed (default 30)")
    p.add_argument("--node", default="node", help="the Node.js executable (default: node on PATH)")
    p.add_argument("--cache-dir", metavar="DIR", type=lambda s: Path(s).expanduser(),
                   help="where answers are cached (default: $XDG_CACHE_HOME/pytest-llmsizer/llm-sizer)")
    p.add_argument("--no-cache", action="store_true", help="always run LLM Sizer")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.timeout <= 0:
        print("llm_sizer adapter: --timeout must be positive", file=sys.stderr)
        return 2
    try:
        request = json.loads(sys.stdin.buffer.read())
    except ValueError as e:
        print(f"llm_sizer adapter: stdin is not JSON: {e}", file=sys.stderr)
        return 2
    try:
        out = answer(request, args)
    except SizerRunError as e:
        print(f"llm_sizer adapter: {e}", file=sys.stderr)
        return 2
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
