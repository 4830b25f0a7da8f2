"""Write the JSON Schema of the native profile format to ``pytest_llmsizer/schema/profile.schema.json``.

The schema is generated from the pydantic model, never edited by hand, so the two cannot disagree. Run this
after changing ``pytest_llmsizer/profile/model.py``: ``tests/test_schema.py`` fails while the shipped file is
stale, and ``--check`` does the same for CI without writing anything.

    python scripts/export_schema.py            # rewrite the shipped schema
    python scripts/export_schema.py --check    # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "pytest_llmsizer" / "schema" / "profile.schema.json"
SCHEMA_ID = "https://pytest-llmsizer/profile.schema.json"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
TITLE = "pytest-llmsizer profile (native format, version 1)"


def build_schema() -> dict[str, Any]:
    """``Profile.model_json_schema()`` (pydantic emits draft 2020-12) with dialect, id and title declared."""
    from pytest_llmsizer.profile.model import Profile

    schema = Profile.model_json_schema()
    return {**schema, "$schema": SCHEMA_DIALECT, "$id": SCHEMA_ID, "title": TITLE}


def render_schema() -> str:
    """The exact text of the shipped file: sorted keys and a fixed indent, so regenerating gives no diff."""
    return json.dumps(build_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if the shipped file is stale"
    )
    parser.add_argument("--output", type=Path, default=SCHEMA_PATH, help=f"default: {SCHEMA_PATH}")
    args = parser.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # run as a plain script from a checkout, without installing the package
    text = render_schema()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
        if current != text:
            print(f"{args.output} is out of date; run: python scripts/export_schema.py", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
