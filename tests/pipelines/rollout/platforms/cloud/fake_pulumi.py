"""A stand-in for the `pulumi` CLI at the subprocess boundary, for the Cloud Run scenarios.

It keeps the stack (its outputs) and what Cloud Run serves in one JSON "world" file named by
FAKE_CLOUD_WORLD. `up` applies RELEASE_* with the program's own release logic (infra/release.py)
and the dev stack file, records the call, and prints output shaped like the CLI's; a transition
listed under `fail` prints a recorded error instead and changes nothing, as a failed update
leaves the previous outputs. `stack output --json` prints the outputs.
"""

import json
import os
import sys
from pathlib import Path
from typing import Any

SERVICE_URL = "https://fraud-scorer-xyz-ew.a.run.app"
DASHBOARD_URL = "https://console.cloud.google.com/monitoring/dashboards/custom/d1?project=my-ml-dev"


def tag_url(tag: str) -> str:
    return SERVICE_URL.replace("https://", f"https://{tag}---")


def outputs_of(release: dict[str, Any], split: list[dict[str, Any]]) -> dict[str, Any]:
    """The stack outputs the controller reads (infra/stack.py exports these and more)."""
    tagged = [target for target in split if target.get("tag")]
    if os.environ.get("FAKE_PLATFORM") == "kubernetes":
        return {
            "release": release,
            "platform": "kubernetes",
            "cluster_endpoint": "https://34.1.2.3",
            "cluster_ca_certificate": "",
            "traffic": split,
        }
    return {
        "release": release,
        "service_url": SERVICE_URL,
        "candidate_url": tag_url(tagged[0]["tag"]) if tagged else None,
        "dashboard_url": DASHBOARD_URL,
        "traffic": split,
    }


def up(world: dict[str, Any]) -> int:
    # Imported here so that `stack output` calls, the most frequent, start fast.
    # pylint: disable=import-outside-toplevel
    from environments.stack_settings import load_file
    from infra.release import (
        ReleaseError,
        ReleaseRequest,
        ReleaseState,
        next_state,
    )
    from infra.revision import build_spec

    settings = load_file("dev")
    previous = world["outputs"].get("release")
    try:
        state = next_state(
            ReleaseState.from_output(previous) if previous else None,
            ReleaseRequest.from_environ(os.environ),
            settings.service_name,
            lambda sha: build_spec(settings, sha),
            settings.rollout.steps,
        )
    except ReleaseError as error:
        sys.stderr.write(f"error: {error}\n")
        return 255
    split = state.split().as_dict()
    world["live"] = split
    world["outputs"] = outputs_of(state.as_output(), split)
    print("Updating (dev)\n    ~  app updated")
    print("Resources:\n    ~ 1 updated")
    return 0


def main() -> int:
    world_path = Path(os.environ["FAKE_CLOUD_WORLD"])
    world: dict[str, Any] = json.loads(world_path.read_text(encoding="utf-8"))
    args = sys.argv[1:]
    release = {k: v for k, v in os.environ.items() if k.startswith("RELEASE_")}
    world["calls"].append({"argv": args, "release": release, "cwd": os.getcwd()})
    if args[:2] == ["stack", "output"]:
        code = 0
        print(json.dumps(world["outputs"]))
    elif failure := world["fail"].get(release.get("RELEASE_ACTION", "reconcile")):
        code = 255
        sys.stderr.write(failure)
    else:
        code = up(world)
    world_path.write_text(json.dumps(world), encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main())
