"""The pull request's one comment, built from recorded `pulumi preview --diff` output."""

import json
from pathlib import Path
from typing import Any

import pytest

from pipelines.delivery.pr_comment import (
    COMMENT_LIMIT,
    MARKER,
    Preview,
    build_comment,
    full_diffs,
    model_section,
    trim,
)
from pipelines.delivery.preview_text import parse_preview
from pipelines.rollout.plan import cloud_plan, duration

PREVIEWS = Path(__file__).parent / "previews"
PLANS = [cloud_plan(env) for env in ("dev", "staging", "prod")]


def recorded(name: str) -> str:
    return (PREVIEWS / f"{name}.txt").read_text(encoding="utf-8")


def verdict(passed: bool = True, champion: bool = True) -> dict[str, Any]:
    quality = {
        "roc_auc": 0.949, "average_precision": 0.484, "recall_at_threshold": 0.498,
        "precision_at_threshold": 0.478, "calibration_error": 0.007,
    }  # fmt: skip
    model = {"location": "gs://b/models/v8", "version": "v8", "sha256": "a" * 64}
    return {
        "passed": passed,
        "failed_gates": [] if passed else ["fairness"],
        "candidate": model,
        "champion": {**model, "version": "v7", "sha256": "b" * 64} if champion else None,
        "champion_quality": {**quality, "roc_auc": 0.951} if champion else None,
        "gates": [
            {
                "gate": "quality",
                "passed": True,
                "reason": "all floors met",
                "figures": quality,
                "thresholds": {},
            },
            {
                "gate": "fairness",
                "passed": passed,
                "reason": "gap | 0.21 over 0.15",
                "figures": {},
                "thresholds": {},
            },
        ],
        "evaluated_at": "2026-11-25T10:00:00+00:00",
    }


def test_summaries_are_read_from_the_resources_and_policies_blocks() -> None:
    quiet = parse_preview(recorded("no_changes"))
    assert (quiet.changes, quiet.unchanged, quiet.failed) == ({}, 27, False)
    assert quiet.headline() == "no changes (27 unchanged)"
    replace = parse_preview(recorded("replace"))
    assert replace.changes == {"create": 1, "update": 1, "replace": 1}
    assert replace.headline() == "1 to create, 1 to update, 1 to replace (24 unchanged)"
    refused = parse_preview(recorded("policy_violation"))
    assert refused.failed
    assert refused.headline() == "preview failed: preview failed"
    assert any("prod-min-instances" in line for line in refused.policy_lines)


def test_one_comment_holds_every_environment_the_verdict_and_the_plan() -> None:
    previews = [
        Preview("dev", recorded("no_changes")),
        Preview("staging", recorded("replace")),
        Preview("prod", recorded("policy_violation")),
    ]
    body = build_comment(previews, verdict(), PLANS)
    assert body.startswith(MARKER)
    assert "| dev | no changes (27 unchanged) |" in body
    assert "| staging | 1 to create, 1 to update, 1 to replace (24 unchanged) |" in body
    assert "| prod | ❌ preview failed: preview failed |" in body
    assert "**Policy violations in prod:**" in body
    assert '~ role: "roles/storage.objectUser" => "roles/storage.objectCreator"' in body
    assert "| ROC-AUC | 0.9490 | 0.9510 | -0.0020 |" in body
    assert "gap \\| 0.21 over 0.15" in body, "a table cell cannot be split by the reason"
    assert (
        "| prod | 200 mirrored requests, at most 15 min | 1% → 5% → 25% → 50% → 100% | 10 min "
        "| 60 s | 40 min | 2 h 55 min |"
    ) in body


def test_a_fork_without_credentials_or_a_first_model_still_gets_a_comment() -> None:
    body = build_comment([Preview("dev", None)], verdict(champion=False), PLANS[:1])
    assert "| dev | not run (no cloud credentials for this pull request) |" in body
    assert "No production model is pinned yet" in body
    assert "<details>" not in body
    assert "The offline gates did not run" in model_section(None)


def test_a_diff_larger_than_githubs_limit_is_trimmed_and_says_where_the_rest_is() -> None:
    line = '            ~ labels: { ~ revision: "fraud-scorer-aaaaaaa-001" => "…-002" }\n'
    huge = recorded("replace").replace("Policies:", line * 2_000 + "Policies:")
    assert len(huge) > COMMENT_LIMIT
    previews = [Preview(env, huge) for env in ("dev", "staging", "prod")]
    body = build_comment(previews, verdict(passed=False), PLANS)
    assert len(body) <= COMMENT_LIMIT
    assert body.count("_Trimmed to ") == 3
    assert "the job summary and the `previews` artifact" in body
    assert "**FAIL**" in body, "the verdict survives a huge diff"
    assert "| staging | 1 to create, 1 to update, 1 to replace (24 unchanged) |" in body
    summary = full_diffs(previews)
    assert summary.count(line.strip()) == 3 * 2_000, "the job summary keeps every line"
    assert len(full_diffs(previews, limit=200_000)) < 200_000, "within the summary's own limit"


def test_diffs_with_backticks_cannot_close_their_fence() -> None:
    text = recorded("replace") + "\n```\n<!-- not a marker -->\n"
    body = build_comment([Preview("dev", text)], None, PLANS[:1])
    assert "````diff" in body


@pytest.mark.parametrize(
    ("text", "budget", "cut"), [("a\nb\nc\n", 100, False), ("a\nb\nc\n", 4, True)]
)
def test_trimming_cuts_at_a_line(text: str, budget: int, cut: bool) -> None:
    trimmed, was_cut = trim(text, budget)
    assert was_cut == cut
    assert len(trimmed) <= budget
    assert text.startswith(trimmed)
    assert not trimmed or trimmed.endswith(("\n", "b", "c"))


def test_durations_read_as_people_read_them() -> None:
    assert [duration(s) for s in (45, 600, 9600)] == ["45 s", "10 min", "2 h 40 min"]


def test_the_verdict_fixture_follows_the_shipped_schema() -> None:
    import jsonschema  # pylint: disable=import-outside-toplevel

    from pipelines.evaluation.verdict import schema  # pylint: disable=import-outside-toplevel

    jsonschema.validate(json.loads(json.dumps(verdict())), schema())
