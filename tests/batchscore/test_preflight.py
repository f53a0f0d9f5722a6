"""`batchscore preflight`: each check passing and failing against a recording fake of Azure
Resource Manager, with its fix; exit codes 0 / 1 / 2; nothing secret printed."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path

import pytest
from azure.core.credentials import AccessToken

from batchscore import cli, preflight, preflight_local
from batchscore.commands import preflight as command
from components.shared.roles import ROLE_IDS, STACK_ROLES
from tests.components.fake_arm import RecordingArm, http_error

SUB = "0b1c2d3e-4f50-4617-8283-949596979899"
OID = "3a3a3a3a-1111-4222-8333-444455556666"
TENANT = "22222222-2222-4222-8222-222222222222"
ROLES = "/providers/Microsoft.Authorization/roleDefinitions/"
OWNER, CONTRIBUTOR = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "b24988ac-6180-42a0-ab88-20f7382dd24c"
RBAC_ADMIN = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
UAA = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
ML = f"/subscriptions/{SUB}/providers/Microsoft.MachineLearningServices/locations/westeurope"
PROVIDERS = f"/subscriptions/{SUB}/providers"
ASSIGNMENTS = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleAssignments"
GROUPS = f"/subscriptions/{SUB}/resourcegroups"
STACK_GROUP = "rg-batchscore-dev-x1y2z3"
SERVERS = f"/subscriptions/{SUB}/resourceGroups/{STACK_GROUP}/providers/Microsoft.Sql/servers"
TYPES = {  # namespace -> (resource type, display names of the regions offering it)
    "Microsoft.MachineLearningServices": "workspaces",
    "Microsoft.StreamAnalytics": "streamingjobs",
    "Microsoft.EventHub": "namespaces",
    "Microsoft.Sql": "servers",
    "Microsoft.ContainerRegistry": "registries",
    "Microsoft.KeyVault": "vaults",
    "Microsoft.Insights": "components",
    "Microsoft.OperationalInsights": "workspaces",
    "Microsoft.ManagedIdentity": "userAssignedIdentities",
    "Microsoft.Storage": "storageAccounts",
}


def jwt(**claims) -> str:
    """An access token as Entra issues it: header.payload.signature, base64url."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part({'oid': OID, 'tid': TENANT, **claims})}.c2lnbmF0dXJl"


class FakeCredential:
    def __init__(self, token: str):
        self.token, self.scopes, self.closed = token, [], False

    def get_token(self, *scopes, **_):
        self.scopes.append(scopes)
        return AccessToken(self.token, 4102444800)

    def close(self):
        self.closed = True


class FakeAzure(RecordingArm):
    """ARM as the deployer sees it. The role-assignment list answers only the documented
    filter form, `assignedTo('{object id}')`, with that principal's assignments (its groups'
    included, as ARM resolves them)."""

    def __init__(self):
        super().__init__()
        self.registered = {ns: "Registered" for ns in TYPES}
        self.regions = {ns: ["West Europe", "North Europe", "East US"] for ns in TYPES}
        # What private networking uses (networkIsolation, prod): more types of a namespace.
        self.registered["Microsoft.Network"] = "Registered"
        self.network_types = {
            "Microsoft.Network": {
                "virtualNetworks": ["West Europe", "North Europe", "East US"],
                "privateEndpoints": ["West Europe", "North Europe", "East US"],
                "privateDnsZones": ["global"],
            },
            "Microsoft.StreamAnalytics": {"clusters": ["West Europe", "East US"]},
        }
        self.workspaces: list[dict] = []
        self.assignments = [(OWNER, f"/subscriptions/{SUB}", None)]
        self.vm_sizes = [
            {"name": "Standard_DS3_v2", "family": "standardDSv2Family", "vCPUs": 4},
            {"name": "Standard_DS4_v2", "family": "standardDSv2Family", "vCPUs": 8},
        ]
        self.usages = {
            "Total Cluster Dedicated Regional vCPUs": (0, 100),
            "Standard DSv2 Family Cluster Dedicated vCPUs": (0, 48),
            "Total Cluster LowPriority Regional vCPUs": (0, 100),
        }
        # resource groups of the subscription, and the SQL servers of the stack's group
        self.groups = [{"name": "rg-other", "tags": {"project": "other"}}]
        self.servers: list[dict] = []
        self.routes = {
            GROUPS: lambda _: {"value": self.groups},
            SERVERS: lambda _: {"value": self.servers},
            # the prod stack's group, named by --resource-group in the private-network tests
            SERVERS.replace(STACK_GROUP, "rg-batchscore-prod-abc123"): lambda _: {
                "value": self.servers
            },
            PROVIDERS: lambda _: {"value": self._providers()},
            ASSIGNMENTS: self._assignments,
            f"{ML}/vmSizes": lambda _: {"value": self.vm_sizes},
            f"{ML}/usages": lambda _: {"value": self._usages()},
        }

    def _providers(self):
        namespaces = {**{ns: [rtype] for ns, rtype in TYPES.items()}, "Microsoft.Network": []}
        return [
            {
                "namespace": ns,
                "registrationState": self.registered[ns],
                "resourceTypes": [
                    {"resourceType": "operations", "locations": []},
                    *({"resourceType": rtype, "locations": self.regions[ns]} for rtype in types),
                    *(
                        {"resourceType": rtype, "locations": where}
                        for rtype, where in self.network_types.get(ns, {}).items()
                    ),
                ],
            }
            for ns, types in namespaces.items()
        ]

    def _assignments(self, params):
        assert params.get("$filter") == f"assignedTo('{OID}')", params
        return {
            "value": [
                {"properties": {"roleDefinitionId": f"/subscriptions/{SUB}{ROLES}{role}",
                                "scope": scope, "principalId": OID, "condition": condition}}
                for role, scope, condition in self.assignments
            ]
        }  # fmt: skip

    def _usages(self):
        return [
            {
                "id": f"/subscriptions/{SUB}/usages/{name.replace(' ', '_')}",
                "name": {"value": name, "localizedValue": name},
                "currentValue": current,
                "limit": limit,
                "unit": "Count",
            }
            for name, (current, limit) in self.usages.items()
        ] + [  # a workspace's share: not the subscription's regional quota
            {
                "id": f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft."
                "MachineLearningServices/workspaces/w/usages/Standard_DSv2_Family_Cluster_Dedicated_vCPUs",
                "name": {"value": "Standard DSv2 Family Cluster Dedicated vCPUs"},
                "currentValue": 0,
                "limit": 1000,
            }
        ]


@pytest.fixture
def azure(monkeypatch) -> FakeAzure:
    fake = FakeAzure()
    fake.credential = FakeCredential(jwt(idtyp="app"))
    monkeypatch.setattr(command, "CREDENTIAL_FACTORY", lambda: fake.credential)
    monkeypatch.setattr(command, "ARM_FACTORY", lambda credential: fake)
    # this machine: Docker with buildx, and a CI runner (no client range needed)
    fake.buildx_problem = None
    monkeypatch.setattr(preflight_local, "BUILDX_PROBE", lambda: fake.buildx_problem)
    fake.environ = {"GITHUB_ACTIONS": "true", "CI": "true"}
    monkeypatch.setattr(preflight_local, "ENVIRON", fake.environ)
    monkeypatch.delenv("ARM_SUBSCRIPTION_ID", raising=False)
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    return fake


def preflight_of(stack, capsys, *extra):
    code = cli.main(["preflight", "--stack", stack, "--subscription", SUB, *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def line_of(out: str, name: str) -> str:
    found = [
        line
        for line in out.splitlines()
        if f" {name}" in line and ("ok" in line or "FAILED" in line or "WARN" in line)
    ]
    assert len(found) == 1, out
    return found[0]


# --- all clear -------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_everything_in_place_passes_with_exit_0(azure, capsys, stack):
    code, out, err = preflight_of(stack, capsys)
    assert code == 0, out + err
    # prod (networkIsolation) adds the private network's region (ok), and the managed network
    # and line of sight, not checked without --resource-group and --outputs (WARN).
    private = stack == "prod"
    assert out.count("  ok    ") == 8 + private and "FAILED" not in out
    assert out.count("  WARN  ") == 2 * private
    total = 8 + 3 * private
    assert f"all {total} checks passed: `pulumi up --stack {stack}` may go ahead." in out
    assert azure.credential.scopes == [("https://management.azure.com/.default",)]
    assert azure.credential.closed
    assert azure.credential.token not in out + err, "the access token was printed"
    assert sorted(set(azure.paths())) == sorted(
        [PROVIDERS, ASSIGNMENTS, f"{ML}/vmSizes", f"{ML}/usages", GROUPS]
    )


# --- each check failing, with its fix --------------------------------------------------------


def test_an_unregistered_provider_fails_with_the_register_command(azure, capsys):
    azure.registered["Microsoft.StreamAnalytics"] = "NotRegistered"
    code, out, _ = preflight_of("dev", capsys)
    assert code == 1
    assert "FAILED" in line_of(out, "resource providers:")
    assert "Microsoft.StreamAnalytics (NotRegistered)" in out
    assert (
        f"fix: az provider register --namespace Microsoft.StreamAnalytics --subscription {SUB}"
        in out
    )
    assert "1 of 8 checks failed" in out


def test_a_region_without_a_service_fails_naming_it_and_where_all_are(azure, capsys):
    azure.regions["Microsoft.StreamAnalytics"] = ["North Europe", "East US"]
    code, out, _ = preflight_of("dev", capsys)
    assert code == 1
    assert "Microsoft.StreamAnalytics/streamingjobs is not offered" in line_of(
        out, "region westeurope:"
    )
    assert (
        "fix: pulumi config set location <region> --stack dev "
        "(regions offering all: eastus, northeurope)" in out
    )


@pytest.mark.parametrize(
    ("assignments", "ok"),
    [
        ([(OWNER, f"/subscriptions/{SUB}", None)], True),
        ([(OWNER, "/providers/Microsoft.Management/managementGroups/platform", None)], True),
        (
            [
                (CONTRIBUTOR, f"/subscriptions/{SUB}", None),
                (RBAC_ADMIN, f"/subscriptions/{SUB}", None),
            ],
            True,
        ),
        (
            [(CONTRIBUTOR, f"/subscriptions/{SUB}", None), (UAA, f"/subscriptions/{SUB}", None)],
            True,
        ),
        ([(CONTRIBUTOR, f"/subscriptions/{SUB}", None)], False),
        ([(OWNER, f"/subscriptions/{SUB}/resourceGroups/someone-elses", None)], False),
        ([], False),
    ],
)
def test_the_deployer_must_be_able_to_assign_roles_where_the_stack_does(
    azure, capsys, assignments, ok
):
    azure.assignments = assignments
    code, out, _ = preflight_of("dev", capsys)
    assert code == (0 if ok else 1), out
    line = line_of(out, "role assignments:")
    assert line.strip().startswith("ok" if ok else "FAILED"), line
    if not ok:
        assert (
            f"fix: az role assignment create --assignee-object-id {OID} --assignee-principal-type "
            'ServicePrincipal --role "Role Based Access Control Administrator" '
            f"--scope /subscriptions/{SUB}"
        ) in out


def test_a_role_on_the_stacks_existing_resource_group_counts(azure, capsys):
    azure.assignments = [(OWNER, f"/subscriptions/{SUB}/resourceGroups/rg-batchscore-dev-x", None)]
    servers = f"/subscriptions/{SUB}/resourceGroups/rg-batchscore-dev-x/providers/Microsoft.Sql"
    azure.routes[f"{servers}/servers"] = {"value": []}  # deployed, but no server yet
    code, out, _ = preflight_of("dev", capsys, "--resource-group", "rg-batchscore-dev-x")
    assert code == 0, out
    assert GROUPS not in azure.paths(), "a named group needs no listing of the subscription's"
    assert "Owner on the subscription or resource group rg-batchscore-dev-x" in out


def constrain_roles(*role_ids: str) -> str:
    """A role-writer condition as the portal's "Constrain roles" writes it."""
    ids = ", ".join(role_ids)
    return (
        "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
        "(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] "
        f"ForAnyOfAnyValues:GuidEquals {{{ids}}}))"
    )


def test_a_conditional_rbac_administrator_it_cannot_read_passes_naming_every_role(azure, capsys):
    azure.assignments = [
        (CONTRIBUTOR, f"/subscriptions/{SUB}", None),
        (RBAC_ADMIN, f"/subscriptions/{SUB}", "@Resource[...] StringEquals 'x'"),
    ]
    code, out, _ = preflight_of("dev", capsys)
    assert code == 0
    line = line_of(out, "role assignments:")
    assert "with a condition: it must allow the roles the stack assigns" in line
    for role in STACK_ROLES:  # every one, Monitoring Metrics Publisher included
        assert role in line, role


def test_a_condition_that_leaves_out_a_role_the_stack_assigns_fails(azure, capsys):
    allowed = [ROLE_IDS[r] for r in STACK_ROLES if r != "Monitoring Metrics Publisher"]
    azure.assignments = [
        (CONTRIBUTOR, f"/subscriptions/{SUB}", None),
        (RBAC_ADMIN, f"/subscriptions/{SUB}", constrain_roles(*allowed)),
    ]
    code, out, _ = preflight_of("dev", capsys)
    assert code == 1
    line = line_of(out, "role assignments:")
    assert "FAILED" in line and "does not allow Monitoring Metrics Publisher" in line
    azure.assignments[1] = (RBAC_ADMIN, f"/subscriptions/{SUB}", constrain_roles(*[
        ROLE_IDS[r].upper() for r in STACK_ROLES
    ]))  # fmt: skip
    code, out, _ = preflight_of("dev", capsys)
    assert code == 0 and "its condition allows every role" in out


def test_dedicated_quota_too_small_for_the_cluster_fails_with_both_fixes(azure, capsys):
    azure.usages["Standard DSv2 Family Cluster Dedicated vCPUs"] = (20, 48)  # prod: 8 x 4 needed
    code, out, _ = preflight_of("prod", capsys)
    assert code == 1
    line = line_of(out, "ML quota (8 x Standard_DS3_v2, Dedicated):")
    assert "standardDSv2Family dedicated vCPUs: 20 of 48 used, 32 needed" in line
    assert (
        f"fix: az quota update --resource-name standardDSv2Family --scope {ML} "
        "--limit-object value=<new limit>" in out
    )
    assert "fix: or fewer nodes: pulumi config set clusterMaxNodes <n> --stack prod" in out


def test_the_regional_dedicated_total_counts_too(azure, capsys):
    azure.usages["Total Cluster Dedicated Regional vCPUs"] = (90, 100)
    code, out, _ = preflight_of("prod", capsys)
    assert code == 1 and "Total Cluster Dedicated Regional vCPUs: 90 of 100 used, 32 needed" in out


def test_a_low_priority_cluster_draws_on_the_low_priority_quota(azure, capsys):
    azure.usages["Standard DSv2 Family Cluster Dedicated vCPUs"] = (
        48,
        48,
    )  # full, but unused by dev
    azure.usages["Total Cluster LowPriority Regional vCPUs"] = (0, 4)  # dev: 2 x 4 needed
    code, out, _ = preflight_of("dev", capsys)
    assert code == 1
    assert "Total Cluster LowPriority Regional vCPUs: 0 of 4 used, 8 needed" in out
    assert "--resource-name TotalLowPriorityCores" in out


def test_a_vm_size_azure_ml_lacks_in_the_region_fails(azure, capsys):
    azure.vm_sizes = [{"name": "Standard_D4s_v5", "family": "standardDSv5Family", "vCPUs": 4}]
    code, out, _ = preflight_of("dev", capsys)
    assert code == 1
    assert "Standard_DS3_v2 is not an Azure ML VM size in westeurope" in out
    assert "fix: pulumi config set clusterVmSize <size> --stack dev (e.g. Standard_D4s_v5)" in out


def test_a_person_deploying_a_stack_set_up_for_ci_is_told_the_sql_admin_kind(azure, capsys):
    azure.credential.token = jwt(scp="user_impersonation", upn="someone@example.com")
    code, out, _ = preflight_of("dev", capsys)
    assert code == 1
    assert "becomes the SQL admin, but sqlAdminPrincipalType is Application" in line_of(
        out, "SQL admin:"
    )
    assert "fix: pulumi config set sqlAdminPrincipalType User --stack dev" in out
    assert "--assignee-principal-type" not in out  # the role check still passed (Owner)


def test_an_unreadable_list_fails_its_check_and_the_others_still_run(azure, capsys):
    azure.routes[ASSIGNMENTS] = http_error(403, "AuthorizationFailed", "no read on roleAssignments")
    code, out, _ = preflight_of("dev", capsys)
    assert code == 1
    line = line_of(out, "role assignments:")
    assert "HTTP 403" in line and "Reader" in line
    assert out.count("  ok    ") == 7


# --- who deploys -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "kind"),
    [
        ({"idtyp": "app"}, "app"),
        ({"idtyp": "user", "scp": "x"}, "user"),
        ({"scp": "x"}, "user"),
        ({}, "app"),
    ],
)
def test_the_deployer_kind_comes_from_its_token(claims, kind):
    deployer = preflight.deployer_from_token(jwt(**claims))
    assert (deployer.object_id, deployer.tenant_id, deployer.kind) == (OID, TENANT, kind)


# --- usage and sign-in errors --------------------------------------------------------------------


def test_usage_errors_exit_2_with_one_line_and_no_traceback(azure, capsys, monkeypatch):
    for argv, message in (
        (["preflight", "--stack", "staging", "--subscription", SUB], "no Pulumi.staging.yaml"),
        (
            ["preflight", "--stack", "dev", "--subscription", "my-sub"],
            "'my-sub' is not a subscription id",
        ),
        (
            ["preflight", "--stack", "dev"],
            "no subscription: pass --subscription ID or set ARM_SUBSCRIPTION_ID",
        ),
        (["preflight"], "the following arguments are required: --stack"),
    ):
        code = cli.main(argv)
        err = capsys.readouterr().err
        assert code == 2, argv
        assert message in err and "Traceback" not in err
    assert azure.calls == [], "Azure was called despite bad usage"
    monkeypatch.setenv("ARM_SUBSCRIPTION_ID", SUB)
    assert cli.main(["preflight", "--stack", "dev"]) == 0


def test_an_invalid_stack_config_is_a_usage_error_naming_the_key(azure, capsys, tmp_path: Path):
    project = Path(__file__).resolve().parents[2]
    (tmp_path / "Pulumi.yaml").write_text((project / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.broken.yaml").write_text("config:\n  batchscore:clusterMaxNodes: 0\n")
    code = cli.main(
        ["preflight", "--stack", "broken", "--subscription", SUB, "--project-dir", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 2 and "clusterMaxNodes: 0 is out of range" in err and len(err.splitlines()) == 1


def test_no_credential_is_one_line_and_exit_1(azure, capsys):
    from azure.core.exceptions import ClientAuthenticationError

    def refuse(*_, **__):
        raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

    azure.credential.get_token = refuse
    code, out, err = preflight_of("dev", capsys)
    assert code == 1 and out == ""
    assert err.strip().splitlines() == [
        "error: cannot sign in to Azure (ClientAuthenticationError): run `az login` as the "
        "identity that deploys, or give this machine a workload identity"
    ]


def test_the_real_hooks_use_the_default_credential_and_the_arm_reader(monkeypatch):
    from components.providers import arm_rest, common

    made = []
    monkeypatch.setattr(common, "default_credential", lambda: made.append("credential") or "cred")
    assert command._default_credential() == "cred" and made == ["credential"]
    assert isinstance(command._default_arm(FakeCredential("t")), arm_rest.ArmReader)


def test_the_report_never_holds_more_than_ids(azure, capsys):
    """Only the object id, subscription and region of the deployer appear: no token, no UPN."""
    azure.credential.token = jwt(idtyp="app", appid="a1b2", upn="ci@example.com")
    _, out, err = preflight_of("dev", capsys)
    assert "ci@example.com" not in out + err and "a1b2" not in out + err
    assert f"as app {OID}" in out.splitlines()[0]


# --- private networking (networkIsolation: prod) -----------------------------------------------
RG = "rg-batchscore-prod-abc123"
WORKSPACES = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/"
    "Microsoft.MachineLearningServices/workspaces"
)


def test_a_region_without_stream_analytics_clusters_fails_the_private_stack_only(azure, capsys):
    azure.network_types["Microsoft.StreamAnalytics"]["clusters"] = ["East US"]
    code, out, _ = preflight_of("prod", capsys)
    assert code == 1
    line = line_of(out, "private networking in the region:")
    assert "FAILED" in line
    assert "Microsoft.StreamAnalytics/clusters is not offered in westeurope" in line
    assert "a region offering Stream Analytics clusters" in out
    assert preflight_of("dev", capsys)[0] == 0, "dev is public: no cluster needed"


def test_an_unregistered_network_provider_fails_with_the_register_command(azure, capsys):
    azure.registered["Microsoft.Network"] = "NotRegistered"
    code, out, _ = preflight_of("prod", capsys)
    assert code == 1
    assert "Microsoft.Network is not registered (NotRegistered)" in line_of(
        out, "private networking in the region:"
    )
    assert f"fix: az provider register --namespace Microsoft.Network --subscription {SUB}" in out


def test_enabling_the_managed_network_on_an_existing_workspace_is_a_warning(azure, capsys):
    azure.routes[WORKSPACES] = lambda _: {"value": azure.workspaces}
    azure.workspaces = [{"name": "mlw-batchscore-prod-abc123", "properties": {}}]
    code, out, _ = preflight_of("prod", capsys, "--resource-group", RG)
    assert code == 0, "a warning does not stop the deployment"
    line = line_of(out, "managed network:")
    assert line.lstrip().startswith("WARN") and "mlw-batchscore-prod-abc123" in line
    assert "cannot be switched off" in line and "refuses the change while" in line
    assert "fix: delete the workspace's cluster first" in out
    assert WORKSPACES in azure.paths()

    azure.workspaces[0]["properties"] = {"managedNetwork": {"isolationMode": ISOLATED}}
    _, out, _ = preflight_of("prod", capsys, "--resource-group", RG)
    assert line_of(out, "managed network:").lstrip().startswith("ok")


def test_the_public_stack_reads_no_workspace_and_probes_nothing(azure, capsys, monkeypatch):
    monkeypatch.setattr(preflight, "_resolve", lambda *_: pytest.fail("dev resolved a name"))
    code, out, _ = preflight_of("dev", capsys, "--resource-group", RG)
    assert code == 0 and "managed network" not in out and "line of sight" not in out
    assert WORKSPACES not in azure.paths()


ISOLATED = "AllowOnlyApprovedOutbound"
OUTPUTS = {
    "storageAccountName": "stbatchscoreprodabc123",
    "sqlServerFqdn": "sql-batchscore-prod-abc123.database.windows.net",
    "registryLoginServer": "crbatchscoreprodabc123.azurecr.io",
    "mlWorkspaceName": "mlw-batchscore-prod-abc123",
}


class Network:
    """DNS and TCP as seen from one machine: names answer from a table (else NXDOMAIN);
    connections succeed only to the listed (address, port); every wait must be bounded."""

    def __init__(self, names: dict[str, list[str]], open_ports: set[tuple[str, int]]):
        self.names, self.open_ports, self.connects = names, open_ports, []

    def resolve(self, host: str, port: int) -> list[str]:
        if host not in self.names:
            raise socket.gaierror(-2, "Name or service not known")
        return self.names[host]

    def connect(self, address: str, port: int, timeout: float) -> None:
        assert 0 < timeout <= 10, "a connection attempt must be bounded"
        self.connects.append((address, port, timeout))
        if (address, port) not in self.open_ports:
            raise TimeoutError("timed out")


def private_view() -> Network:
    """The deployment runner inside the VNet: private addresses from the zones."""
    names = {
        "stbatchscoreprodabc123.blob.core.windows.net": ["10.62.0.4"],
        "sql-batchscore-prod-abc123.database.windows.net": ["10.62.0.5"],
        "crbatchscoreprodabc123.azurecr.io": ["10.62.0.6"],
    }
    ports = {("10.62.0.4", 443), ("10.62.0.5", 1433), ("10.62.0.6", 443)}
    return Network(names, ports)


def with_outputs(tmp_path: Path, outputs=None) -> str:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS if outputs is None else outputs))
    return str(path)


def use(network: Network, monkeypatch) -> Network:
    monkeypatch.setattr(preflight, "_resolve", network.resolve)
    monkeypatch.setattr(preflight, "_connect", network.connect)
    return network


def test_the_runner_inside_the_vnet_reaches_every_data_plane_endpoint(
    azure, capsys, monkeypatch, tmp_path
):
    network = use(private_view(), monkeypatch)
    code, out, _ = preflight_of("prod", capsys, "--outputs", with_outputs(tmp_path))
    assert code == 0, out
    assert "blob storage, SQL, registry reached on private addresses" in line_of(
        out, "line of sight:"
    )
    assert [(a, p) for a, p, _ in network.connects] == [
        ("10.62.0.4", 443), ("10.62.0.5", 1433), ("10.62.0.6", 443)
    ]  # fmt: skip


def test_a_machine_outside_the_vnet_sees_public_addresses_and_fails(
    azure, capsys, monkeypatch, tmp_path
):
    network = private_view()
    network.names["stbatchscoreprodabc123.blob.core.windows.net"] = ["20.60.1.2"]
    use(network, monkeypatch)
    code, out, _ = preflight_of("prod", capsys, "--outputs", with_outputs(tmp_path))
    assert code == 1
    line = line_of(out, "line of sight:")
    assert "blob storage stbatchscoreprodabc123.blob.core.windows.net resolves to 20.60.1.2" in line
    assert "does not use the VNet's private DNS zones" in line
    assert "fix: run `pulumi up` and this preflight on the deployment runner" in out
    assert ("20.60.1.2", 443) not in [(a, p) for a, p, _ in network.connects]


def test_an_endpoint_that_does_not_answer_or_resolve_fails_naming_it(
    azure, capsys, monkeypatch, tmp_path
):
    network = private_view()
    network.open_ports.discard(("10.62.0.5", 1433))
    del network.names["crbatchscoreprodabc123.azurecr.io"]
    use(network, monkeypatch)
    code, out, _ = preflight_of("prod", capsys, "--outputs", with_outputs(tmp_path))
    assert code == 1
    line = line_of(out, "line of sight:")
    assert "SQL sql-batchscore-prod-abc123.database.windows.net (10.62.0.5:1433) does not " \
        "answer within 3 s (TimeoutError)" in line  # fmt: skip
    assert "registry crbatchscoreprodabc123.azurecr.io does not resolve (gaierror)" in line
    assert "blob storage" not in line


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not JSON"), ("[1, 2]", "expected the object `pulumi stack output --json`")],
)
def test_a_bad_outputs_file_is_a_usage_error(azure, capsys, tmp_path, content, message):
    path = tmp_path / "outputs.json"
    path.write_text(content)
    code = cli.main(["preflight", "--stack", "prod", "--subscription", SUB, "--outputs", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert azure.calls == []
    code = cli.main(
        ["preflight", "--stack", "prod", "--subscription", SUB, "--outputs", str(tmp_path / "no")]
    )
    assert code == 2 and "cannot read it" in capsys.readouterr().err


def test_fake_azure_refuses_what_arm_would_not_answer(azure):
    with pytest.raises(AssertionError, match="unexpected ARM GET"):
        azure.get(f"/subscriptions/{SUB}/resources", "2021-04-01")
    with pytest.raises(AssertionError):
        azure.get(ASSIGNMENTS, "2022-04-01", {"$filter": "principalId eq 'x'"})


# --- the SQL admin named in config: the deployer must be it, or in its group ------------------
ADMIN_GROUP = "5c5c5c5c-1111-4222-8333-444455556666"


def pinned_admin(tmp_path: Path, kind: str, object_id: str) -> list[str]:
    project = Path(__file__).resolve().parents[2]
    (tmp_path / "Pulumi.yaml").write_text((project / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.pinned.yaml").write_text(
        "config:\n"
        "  batchscore:sqlAdminLogin: dba\n"
        f"  batchscore:sqlAdminObjectId: {object_id}\n"
        f"  batchscore:sqlAdminPrincipalType: {kind}\n"
    )
    return ["--project-dir", str(tmp_path)]


@pytest.mark.parametrize(
    ("kind", "admin", "groups", "ok", "says"),
    [
        ("User", OID, None, True, "the deployer is the admin dba"),
        ("Application", ADMIN_GROUP, None, False, "the server would refuse"),
        ("Group", ADMIN_GROUP, [ADMIN_GROUP], True, "member of the admin group"),
        ("Group", ADMIN_GROUP, ["99999999-1111-4222-8333-444455556666"], False, "not a member"),
        ("Group", ADMIN_GROUP, None, True, "az ad group member check"),
    ],
)
def test_a_pinned_sql_admin_must_be_the_deployer_or_its_group(
    azure, capsys, tmp_path, kind, admin, groups, ok, says
):
    claims = {"idtyp": "app"} | ({"groups": groups} if groups is not None else {})
    azure.credential.token = jwt(**claims)
    extra = pinned_admin(tmp_path, kind, admin)
    code = cli.main(["preflight", "--stack", "pinned", "--subscription", SUB, *extra])
    out = capsys.readouterr().out
    line = line_of(out, "SQL admin:")
    assert line.strip().startswith("ok" if ok else "FAILED"), line
    assert says in line, line
    assert (code == 0) is ok, out


# --- a deployer other than the usual one --------------------------------------------------------


def test_another_deployer_would_flip_the_sql_admin_and_the_storage_role(azure, capsys):
    azure.groups.append(
        {"name": STACK_GROUP, "tags": {"project": "batchscore", "environment": "dev"}}
    )
    azure.servers = [
        {
            "name": "sql-batchscore-dev-x1y2z3",
            "properties": {
                "administrators": {"login": "batchscore-dev-deployer", "sid": OID.upper()}
            },
        }
    ]
    code, out, _ = preflight_of("dev", capsys)
    assert code == 0 and "was deployed by this identity" in line_of(out, "usual deployer:")
    other = "7e7e7e7e-1111-4222-8333-444455556666"
    azure.servers[0]["properties"]["administrators"]["sid"] = other
    code, out, _ = preflight_of("dev", capsys)
    line = line_of(out, "usual deployer:")
    assert code == 1 and "FAILED" in line
    assert f"({other}), not this deployer ({OID})" in line
    assert "move the deployer's storage role" in line
    assert f"fix: or pin the admin: pulumi config set sqlAdminObjectId {other}" in out
    assert SERVERS in azure.paths()


def test_a_pinned_admin_needs_no_usual_deployer_check(azure, capsys, tmp_path):
    extra = pinned_admin(tmp_path, "Application", OID)
    code = cli.main(["preflight", "--stack", "pinned", "--subscription", SUB, *extra])
    out = capsys.readouterr().out
    assert code == 0 and "usual deployer" not in out and GROUPS not in azure.paths()


# --- this machine -------------------------------------------------------------------------------


def test_without_docker_buildx_the_image_cannot_build(azure, capsys):
    azure.buildx_problem = "docker is not on PATH"
    code, out, _ = preflight_of("dev", capsys)
    line = line_of(out, "Docker buildx:")
    assert code == 1 and "FAILED" in line and "docker is not on PATH" in line


def test_a_laptop_with_no_sql_firewall_range_is_told_before_up(azure, capsys):
    azure.environ.clear()  # not a CI runner
    code, out, _ = preflight_of("dev", capsys)
    line = line_of(out, "SQL firewall:")
    assert code == 1 and "FAILED" in line and "sqlFirewallIpRanges is empty" in line
    assert "fix: pulumi config set --path 'sqlFirewallIpRanges[0]'" in out


def test_the_buildx_probe_runs_docker_buildx_version(monkeypatch, tmp_path):
    """The real probe against a stand-in `docker` on PATH that answers like Docker."""
    docker = tmp_path / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        'if [ "$1 $2" = "buildx version" ]; then echo "github.com/docker/buildx v0.17.1"; '
        "exit 0; fi\n"
        "echo \"docker: '$1' is not a docker command.\" >&2; exit 1\n"
    )
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert preflight_local.probe_buildx() is None
    docker.write_text("#!/bin/sh\necho \"docker: 'buildx' is not a docker command.\" >&2; exit 1\n")
    assert "is not a docker command" in preflight_local.probe_buildx()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert preflight_local.probe_buildx() == "docker is not on PATH"


# --- the Stream Analytics cluster's connections wait for approval ------------------------------
NAMESPACE_ID = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.EventHub/namespaces/"
    "evhns-batchscore-prod-abc123"
)
SERVER_ID = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Sql/servers/"
    "sql-batchscore-prod-abc123"
)


def connection(target_id: str, name: str, status: str) -> dict:
    """A private endpoint connection as ARM lists it on its target."""
    return {
        "id": f"{target_id}/privateEndpointConnections/{name}",
        "name": name,
        "properties": {
            "privateEndpoint": {"id": f"/subscriptions/managed/.../privateEndpoints/{name}"},
            "privateLinkServiceConnectionState": {"status": status, "description": ""},
        },
    }


def test_a_pending_stream_analytics_connection_fails_with_the_approve_command(
    azure, capsys, monkeypatch, tmp_path
):
    use(private_view(), monkeypatch)
    azure.routes[WORKSPACES] = {"value": []}
    azure.routes[f"{NAMESPACE_ID}/privateEndpointConnections"] = {
        "value": [connection(NAMESPACE_ID, "asa-eventhubs", "Pending")]
    }
    azure.routes[f"{SERVER_ID}/privateEndpointConnections"] = {
        "value": [connection(SERVER_ID, "asa-sql", "Approved")]
    }
    outputs = {
        **OUTPUTS,
        "eventHubsNamespaceFqdn": "evhns-batchscore-prod-abc123.servicebus.windows.net",
    }
    args = ("--resource-group", RG, "--outputs", with_outputs(tmp_path, outputs))
    code, out, _ = preflight_of("prod", capsys, *args)
    assert code == 1
    line = line_of(out, "private endpoint connections:")
    assert "asa-eventhubs on evhns-batchscore-prod-abc123 waits for approval" in line
    assert "asa-sql" not in line
    assert (
        f"fix: az network private-endpoint-connection approve --id {NAMESPACE_ID}"
        "/privateEndpointConnections/asa-eventhubs" in out
    )

    azure.routes[f"{NAMESPACE_ID}/privateEndpointConnections"] = {
        "value": [connection(NAMESPACE_ID, "asa-eventhubs", "Approved")]
    }
    code, out, _ = preflight_of("prod", capsys, *args)
    assert code == 0, out
    assert "none pending on Event Hubs and SQL (2 in place)" in line_of(
        out, "private endpoint connections:"
    )


def test_connections_are_not_read_without_the_group_and_the_outputs(azure, capsys):
    code, out, _ = preflight_of("prod", capsys)
    assert code == 0 and "private endpoint connections" not in out
    assert not [p for p in azure.paths() if p.endswith("/privateEndpointConnections")]
