"""A traffic split as the rules of a Gateway API HTTPRoute, and back.

The Pulumi program writes the rules (infra/kubernetes/objects.py); the rollout controller reads
them from the cluster (pipelines/rollout/platforms/kubernetes/cluster_api.py). One module holds
both directions, so what the controller finds live is compared with what the program declared,
and a test round-trips every release state.

- The default rule sends each revision its percent as a weight (weights are relative in the
  Gateway API; these always sum to 100, zero included for a dark launch).
- A tagged revision also gets a rule of its own matching `X-Rollout-Tag: <tag>`: a request
  carrying that header reaches only it, whatever the weights (a header match outranks a rule
  without one: https://gateway-api.sigs.k8s.io/reference/spec/#httprouterule).
"""

from collections.abc import Mapping, Sequence
from typing import Any

from environments.traffic import Target, TrafficError, TrafficSplit

TAG_HEADER = "X-Rollout-Tag"
SERVICE_PORT = 80  # every revision's Service listens here; the pods on 8080
_TAG_KEY = TAG_HEADER.lower()  # header names match case-insensitively
_EVERYTHING = {"path": {"type": "PathPrefix", "value": "/"}}


def backend(revision: str, weight: int | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": revision, "port": SERVICE_PORT}
    return ref if weight is None else ref | {"weight": weight}


def rules(split: TrafficSplit) -> list[dict[str, Any]]:
    """Tag rules first, then the weighted default."""
    tagged = [
        {
            "matches": [
                {**_EVERYTHING, "headers": [{"type": "Exact", "name": TAG_HEADER, "value": t.tag}]}
            ],
            "backendRefs": [backend(t.revision)],
        }
        for t in split.targets
        if t.tag
    ]
    weighted = {
        "matches": [_EVERYTHING],
        "backendRefs": [backend(t.revision, t.percent) for t in split.targets],
    }
    return [*tagged, weighted]


class RouteError(ValueError):
    """The route's rules are not the shape `rules` writes: someone edited the route by hand."""


def _header_tag(rule: Mapping[str, Any]) -> str | None:
    headers = [h for match in rule.get("matches") or [] for h in match.get("headers") or []]
    values = [str(h.get("value")) for h in headers if str(h.get("name")).lower() == _TAG_KEY]
    if len(values) > 1 or (headers and not values):
        raise RouteError(f"a rule matches headers this program never writes: {headers}")
    return values[0] if values else None


def split_of(route_rules: Sequence[Mapping[str, Any]]) -> TrafficSplit:
    """The split a route's rules implement; a RouteError when they are not ours."""
    tags: dict[str, str] = {}
    weighted: list[tuple[str, int]] | None = None
    for rule in route_rules:
        refs = rule.get("backendRefs") or []
        tag = _header_tag(rule)
        if tag is not None:
            if len(refs) != 1:
                raise RouteError(f"the {tag!r} rule must reach exactly one revision: {refs}")
            tags[str(refs[0]["name"])] = tag
        elif weighted is None:
            # The Gateway API's default weight is 1.
            weighted = [(str(ref["name"]), int(ref.get("weight", 1))) for ref in refs]
        else:
            raise RouteError("the route has two rules without a tag header: one split only")
    if weighted is None:
        raise RouteError("the route has no weighted rule: it sends no user traffic anywhere")
    if stray := set(tags) - {name for name, _ in weighted}:
        raise RouteError(f"tagged revisions {sorted(stray)} are missing from the weighted rule")
    try:
        return TrafficSplit(
            tuple(Target(name, weight, tags.get(name)) for name, weight in weighted)
        )
    except TrafficError as error:
        raise RouteError(f"the route's weights are not a split of this program: {error}") from None
