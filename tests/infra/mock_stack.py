"""Runs a Pulumi program under `pulumi.runtime.set_mocks` and records every resource it declares.

Mocks see what the engine would: camelCase input keys and numbers as floats. Values the cloud
computes (e-mails, URIs, project numbers, tagged URLs) are faked here, one place for all tests.
"""

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

from environments.declared import declarations

PULUMI_PROJECT = declarations().project
ORGANIZATION = "organization"
PROJECT_NUMBER = "123456789012"
CLUSTER_ADDRESS = "34.1.2.3"
CLUSTER_CA = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="  # base64 of a PEM header
ACCESS_TOKEN = "ya29.deployer-token"  # noqa: S105  # a stand-in, never a credential


@dataclass
class Resource:
    typ: str
    name: str
    inputs: dict[str, Any]


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    """Answers like the engine and records each resource; `previous` is the stack's last outputs."""

    previous: Mapping[str, Any]
    resources: list[Resource] = field(default_factory=list[Resource])

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(Resource(args.typ, args.name, dict(args.inputs)))
        outputs = dict(args.inputs)
        if args.typ == "pulumi:pulumi:StackReference":
            outputs = {"name": args.inputs["name"], "outputs": dict(self.previous)}
        elif args.typ == "gcp:serviceaccount/account:Account":
            outputs["email"] = (
                f"{args.inputs['accountId']}@{args.inputs['project']}.iam.gserviceaccount.com"
            )
            outputs["name"] = (
                f"projects/{args.inputs['project']}/serviceAccounts/{outputs['email']}"
            )
        elif args.typ == "gcp:cloudrunv2/service:Service":
            base = f"{args.inputs['name']}-xyz-ew.a.run.app"
            outputs["uri"] = f"https://{base}"
            outputs["trafficStatuses"] = [
                {**target, "uri": f"https://{target['tag']}---{base}"}
                if target.get("tag")
                else target
                for target in args.inputs.get("traffics", [])
            ]
        elif args.typ == "gcp:projects/iAMCustomRole:IAMCustomRole":
            outputs["name"] = f"projects/{args.inputs['project']}/roles/{args.inputs['roleId']}"
        elif args.typ == "gcp:projects/serviceIdentity:ServiceIdentity":
            agent = (
                f"service-{PROJECT_NUMBER}@gcp-sa-monitoring-notification.iam.gserviceaccount.com"
            )
            outputs |= {"email": agent, "member": f"serviceAccount:{agent}"}
        elif args.typ == "gcp:storage/bucket:Bucket":
            outputs["url"] = f"gs://{args.inputs['name']}"
        elif args.typ == "gcp:logging/projectSink:ProjectSink":
            # the sink's own account, which Cloud Logging creates (unique_writer_identity)
            outputs["writerIdentity"] = (
                f"serviceAccount:service-{PROJECT_NUMBER}@gcp-sa-logging.iam.gserviceaccount.com"
            )
        elif args.typ == "gcp:kms/keyRing:KeyRing":
            ring = args.inputs
            key_ring_id = f"projects/{ring['project']}/locations/{ring['location']}/keyRings/"
            return key_ring_id + ring["name"], outputs
        elif args.typ == "gcp:kms/cryptoKey:CryptoKey":
            return f"{args.inputs['keyRing']}/cryptoKeys/{args.inputs['name']}", outputs
        elif args.typ.startswith("gcp:iam/workloadIdentityPool"):
            pools = f"projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools"
            outputs["name"] = f"{pools}/{args.inputs['workloadIdentityPoolId']}"
            if "workloadIdentityPoolProviderId" in args.inputs:
                outputs["name"] += f"/providers/{args.inputs['workloadIdentityPoolProviderId']}"
        return f"{args.name}-id", outputs

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "gcp:organizations/getProject:getProject":  # noqa: S105  # an invoke name
            return {"number": PROJECT_NUMBER, "projectId": args.args.get("projectId")}, []
        if args.token == "gcp:container/getCluster:getCluster":  # noqa: S105
            master_auth = {"clusterCaCertificate": CLUSTER_CA}
            return {**args.args, "endpoint": CLUSTER_ADDRESS, "masterAuths": [master_auth]}, []
        if args.token == "gcp:organizations/getClientConfig:getClientConfig":  # noqa: S105
            return {"accessToken": ACCESS_TOKEN, "project": "", "region": "", "zone": ""}, []
        return {}, []

    def of_type(self, typ: str) -> list[Resource]:
        return [resource for resource in self.resources if resource.typ == typ]

    def one(self, typ: str) -> Resource:
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, found {[r.name for r in found]}"
        return found[0]


def stack_config(path: Path) -> dict[str, str]:
    """A stack file's config as the engine hands it to the program: every value a string, and
    Pulumi.yaml's declared default for each key the file leaves out."""
    declared = declarations()
    defaults = {f"{declared.project}:{key}": value for key, value in declared.defaults.items()}
    config: dict[str, Any] = defaults | yaml.safe_load(path.read_text())["config"]
    return {
        key: value
        if isinstance(value, str)
        else json.dumps(value)
        if isinstance(value, list | dict | bool)
        else str(value)
        for key, value in config.items()
    }


@dataclass
class Run:
    mocks: RecordingMocks
    outputs: dict[str, Any]


def run_program(
    program: Callable[[], Mapping[str, Any]],
    stack: str,
    config: Mapping[str, str],
    previous: Mapping[str, Any] | None = None,
    project: str = PULUMI_PROJECT,
) -> Run:
    """Run `program` as stack `stack` and wait for every output it returns."""
    mocks = RecordingMocks(previous or {})
    pulumi.runtime.set_mocks(
        mocks, project=project, stack=stack, preview=False, organization=ORGANIZATION
    )
    pulumi.runtime.set_all_config(dict(config))
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def _run() -> pulumi.Output[None]:
        exported = program()
        return pulumi.Output.all(**exported).apply(outputs.update)

    # Pulumi's test runner asks for the current loop; whatever ran before in this process (a
    # TestClient, asyncio.run) may have left none, which only the first run would create.
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    _run()
    return Run(mocks, outputs)
