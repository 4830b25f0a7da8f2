"""``benchmarks/accuracy.py`` and the main job (``pytest profiles/``) compare the same things with the same numbers.

For every record the benchmark compares (vme-dev.jsonl and issue-threads.jsonl, read at run time), the committed
profile made from that record is run through the plugin's own path (built-in calculator, ``compare``): each quantity
the benchmark compares must be a row of the profile's accuracy item, with the same profiled value and the same
calculated value. A record the benchmark cannot estimate must fail to estimate as a profile too, with the same kind of
error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pytest_llmsizer.calculator.result import normalise_result
from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.pluggable.loader import builtin
from pytest_llmsizer.profile.load import load_profile
from pytest_llmsizer.profile.model import Profile
from pytest_llmsizer.units import GiB
from pytest_llmsizer.validation.compare import compare
from pytest_llmsizer.validation.tolerances import DEFAULT_TOLERANCES

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from vllm_records import DEFAULT_DATA, Case, issue_thread_cases, run_case, vme_cases  # noqa: E402

pytestmark = pytest.mark.skipif(not DEFAULT_DATA.is_dir(), reason="../shared/data is not beside the checkout")

CAPACITIES = ("kv_cache_tokens", "max_concurrency")


def _profiles(folder: str) -> dict[tuple[str, str | None], list[Profile]]:
    out: dict[tuple[str, str | None], list[Profile]] = {}
    for path in sorted((REPO / "profiles" / folder).glob("*.json")):
        p = load_profile(path)
        out.setdefault((p.source.reference, p.model.name_in_source), []).append(p)
    return out


def _cases() -> list[tuple[Case, Profile]]:
    pairs: list[tuple[Case, Profile]] = []
    vme = _profiles("vme-dev")
    for case in vme_cases(DEFAULT_DATA / "vme-dev.jsonl"):
        (profile,) = [p for (ref, _), ps in vme.items() if ref.endswith(f"record {case.record_id}") for p in ps]
        pairs.append((case, profile))
    threads = _profiles("vllm-issue-threads")
    raw = (DEFAULT_DATA / "issue-threads.jsonl").read_text(encoding="utf-8").splitlines()
    seen: dict[tuple[str, str], int] = {}
    for case in issue_thread_cases(DEFAULT_DATA / "issue-threads.jsonl")[0]:
        record = json.loads(raw[int(case.record_id.rsplit("#", 1)[1])])
        key = (record["source"], record["model"])
        n = seen.get(key, 0)
        seen[key] = n + 1
        pairs.append((case, threads[key][n]))
    return pairs


PAIRS = _cases()


def test_every_benchmark_record_has_its_profile() -> None:
    assert len(PAIRS) >= 220


@pytest.mark.parametrize("case,profile", PAIRS, ids=[f"{c.source}:{c.record_id[:40]}" for c, _ in PAIRS])
def test_benchmark_and_main_job_agree(case: Case, profile: Profile) -> None:
    try:
        bench = run_case(case)
    except LlmsizerError as e:
        with pytest.raises(LlmsizerError) as caught:
            builtin(profile)
        # the same failure; the wording may differ only where the importer cleaned a name (a GPU name's note)
        assert type(caught.value) is type(e)
        return
    outcome = compare(profile, normalise_result(builtin(profile)), dict(DEFAULT_TOLERANCES.defaults))
    for quantity, measured in case.measured.items():
        row = outcome.row(quantity)
        assert row is not None, f"the profile's accuracy item does not compare {quantity}"
        scale = 1 if quantity in CAPACITIES else GiB
        assert row.profiled / scale == pytest.approx(measured, rel=1e-9, abs=1e-9), quantity
        expected = bench[quantity]
        if quantity == "kv_cache":
            expected = max(expected, 0.0)  # the benchmark shows the raw available figure; the estimate's pool is >= 0
        assert row.calculated is not None
        assert row.calculated / scale == pytest.approx(expected, rel=1e-9, abs=1e-6), quantity
