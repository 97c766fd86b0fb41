"""`shortener orgs …` and `shortener keys …`: the admin routes' work from the command line, on
the store a running service uses."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest
from redis import Redis as SyncRedis

from tests.support import service
from tests.support.redis_servers import RedisServer


@pytest.fixture
def env(redis_server: RedisServer, tmp_path: Path) -> dict[str, str]:
    with SyncRedis.from_url(redis_server.url) as client:
        client.flushall()
    return service.service_env(redis_server.url, tmp_path / "data")


def test_orgs_set_and_list(env: dict[str, str]) -> None:
    made = service.run_cli(
        env,
        *("orgs", "set", "contoso", "--domain", "Go.Contoso.com", "--domain", "bücher.example"),
        *("--allow", "contoso.com", "--block", "bit.ly", "--fallback-url", "https://contoso.com/"),
    )
    assert made.returncode == 0, made.stderr
    org = json.loads(made.stdout)
    assert org["domains"] == ["go.contoso.com", "xn--bcher-kva.example"]
    assert org["allowed_destinations"] == ["contoso.com"]
    assert org["blocked_destinations"] == ["bit.ly"]
    # An option left out keeps its value.
    changed = service.run_cli(env, "orgs", "set", "contoso", "--fallback-url", "https://c.com/")
    assert json.loads(changed.stdout)["domains"] == org["domains"]
    listed = service.run_cli(env, "orgs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    names = [found["org"] for found in json.loads(listed.stdout)["orgs"]]
    assert names == ["contoso", "org-a", "org-b"]
    table = service.run_cli(env, "orgs", "list")
    assert re.search(r"^contoso\s+go\.contoso\.com xn--bcher-kva\.example$", table.stdout, re.M)


def test_a_domain_of_another_org_is_refused(env: dict[str, str]) -> None:
    assert (
        service.run_cli(env, "orgs", "set", "contoso", "--domain", "go.contoso.com").returncode == 0
    )
    taken = service.run_cli(env, "orgs", "set", "fabrikam", "--domain", "go.contoso.com")
    assert taken.returncode == 1
    assert "belongs to another org" in taken.stderr


@pytest.mark.parametrize(
    "arguments",
    [
        ("--domain", "go.contoso.com:443"),
        ("--fallback-url", "ftp://contoso.com/"),
        ("--allow", "a b"),
    ],
)
def test_settings_that_are_not_valid_are_refused(
    env: dict[str, str], arguments: tuple[str, ...]
) -> None:
    refused = service.run_cli(env, "orgs", "set", "contoso", *arguments)
    assert refused.returncode == 2
    assert refused.stderr.startswith("shortener: ")
    assert json.loads(service.run_cli(env, "orgs", "list", "--json").stdout)["orgs"][0]["org"] == (
        "org-a"
    )


def test_keys_made_and_revoked_on_the_command_line(env: dict[str, str]) -> None:
    with service.running_service(env) as running:
        made = service.run_cli(env, "keys", "create", "org-a")
        assert made.returncode == 0, made.stderr
        key_id = re.search(r"^key_id\s+(\S+)$", made.stdout, re.M)
        key = re.search(r"^key\s+(\S+)$", made.stdout, re.M)
        assert key_id and key
        auth = {"Authorization": f"Bearer {key.group(1)}"}
        # The service reads the new key from the store within a second or two.
        assert _eventually(running.base_url, auth, 200)
        listed = httpx.get(
            f"{running.base_url}/v1/admin/orgs/org-a/keys", headers=service.ADMIN_AUTH
        ).json()
        assert [found["key_id"] for found in listed["keys"]] == [key_id.group(1)]
        revoked = service.run_cli(env, "keys", "revoke", "org-a", key_id.group(1))
        assert revoked.returncode == 0, revoked.stderr
        assert _eventually(running.base_url, auth, 401)
    again = service.run_cli(env, "keys", "revoke", "org-a", key_id.group(1))
    assert again.returncode == 1
    unknown = service.run_cli(env, "keys", "create", "nobody")
    assert unknown.returncode == 1 and "nobody" in unknown.stderr


def _eventually(base_url: str, auth: dict[str, str], status: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if httpx.get(f"{base_url}/v1/interactions", headers=auth).status_code == status:
            return True
        time.sleep(0.1)
    return False
