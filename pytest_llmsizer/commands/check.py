"""``llmsizer check PROFILE...``: list every problem in every file."""

from __future__ import annotations

import argparse

from pytest_llmsizer.commands.common import EXIT_FAILED, EXIT_OK
from pytest_llmsizer.commands.discover import profile_files
from pytest_llmsizer.errors import ProfileError
from pytest_llmsizer.profile.load import detect_format, profile_from_data, read_json_file


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check", help="validate profile files and list every problem",
        description="Read each profile (directories are searched for *.json) and list every problem with its JSON "
                    "path. Exit 0 when all are valid, 1 when any has a problem.",
    )
    p.add_argument("paths", nargs="+", metavar="PROFILE", help="profile files or directories")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    files = profile_files(args.paths)
    bad = 0
    for path in files:
        try:
            data = read_json_file(path)  # read and parsed once for the check and the format name
            profile_from_data(data, str(path))
            fmt = detect_format(data)
            print(f"ok    {path} ({fmt})")
        except ProfileError as e:
            bad += 1
            print(f"FAIL  {path}: {len(e.problems)} problem(s)")
            for problem in e.problems:
                print(f"        {problem.render()}")
    print(f"{len(files)} file(s) checked, {bad} with problems")
    return EXIT_FAILED if bad else EXIT_OK
