"""`eventledger keys` with expiry and rotation, and `serve`'s limits and CORS options,
run as the real program on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from eventledger import open_store
from eventledger.http import ApiKeys
from tests.cli.conftest import DEMO_APP, Cli, table


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_key_made_to_expire_shows_when_in_the_list(cli: Cli, store_url: str) -> None:
    made = cli.ok("keys", "create", "service:batch", "--expires-in", "90d", "--store", store_url)
    assert ", expires " in made.err
    as_json = json.loads(
        cli.ok(
            "keys", "create", "user:ops", "--expires-in", "12h", "--json", "--store", store_url
        ).out
    )
    expires = _when(as_json["expires"])
    assert timedelta(hours=11) < expires - datetime.now(UTC) <= timedelta(hours=12)
    never = json.loads(cli.ok("keys", "create", "user:root", "--json", "--store", store_url).out)
    assert never["expires"] is None
    rows = {r["owner"]: r for r in table(cli.ok("keys", "list", "--store", store_url).out)}
    assert rows["user:root"]["expires"] == ""
    batch = _when(rows["service:batch"]["expires"])
    assert timedelta(days=89) < batch - datetime.now(UTC) <= timedelta(days=90)
    async with await open_store(store_url) as store:
        assert await ApiKeys(store).verify(made.out.strip()) is not None


async def test_rotating_makes_a_successor_and_the_old_key_expires_after_the_overlap(
    cli: Cli, store_url: str
) -> None:
    old = json.loads(
        cli.ok("keys", "create", "service:shop", "--scope", "read", "--scope", "write",
               "--json", "--store", store_url).out
    )  # fmt: skip
    rotated = cli.ok("keys", "rotate", old["id"], "--overlap", "1h", "--store", store_url)
    new_key = rotated.out.strip()
    assert "\n" not in new_key  # only the new key on stdout, for $(...)
    assert f"replaces key {old['id']}, which expires at " in rotated.err
    async with await open_store(store_url) as store:
        keys = ApiKeys(store, cache_seconds=0)
        new = await keys.verify(new_key)
        assert new is not None
        assert (new.owner, new.scopes) == ("service:shop", frozenset({"read", "write"}))
        assert await keys.verify(old["key"]) is not None  # both, during the overlap
    listed = {
        k["id"]: k for k in json.loads(cli.ok("keys", "list", "--json", "--store", store_url).out)
    }
    ending = _when(listed[old["id"]]["expires"])
    assert timedelta(minutes=59) < ending - datetime.now(UTC) <= timedelta(hours=1)
    assert listed[new.id]["expires"] is None
    assert old["key"] not in json.dumps(listed)
    assert new_key not in json.dumps(listed)

    # With no overlap the old key is over at once: hidden from the list unless asked.
    again = json.loads(
        cli.ok("keys", "rotate", new_key, "--overlap", "0s", "--json", "--store", store_url).out
    )
    assert again["replaces"]["id"] == new.id
    assert again["key"].startswith(f"el_{again['id']}_")
    active = {
        k["id"] for k in json.loads(cli.ok("keys", "list", "--json", "--store", store_url).out)
    }
    assert new.id not in active
    every = table(cli.ok("keys", "list", "--revoked", "--store", store_url).out)
    assert any(r["id"] == new.id and r["expires"].endswith("(expired)") for r in every)


def test_durations_and_rotations_that_make_no_sense_are_one_line(cli: Cli) -> None:
    store = f"sqlite:///{cli.folder}/keys.db"
    assert cli.fails("keys", "create", "user:a", "--expires-in", "soon", "--store", store) == (
        "error: a duration is a number and a unit (s, m, h, d, w), like 90d, 1h or 30m; not 'soon'"
    )
    made = json.loads(cli.ok("keys", "create", "user:a", "--json", "--store", store).out)
    cli.ok("keys", "revoke", made["id"], "--store", store)
    assert "revoked key has no successor" in cli.fails(
        "keys", "rotate", made["id"], "--store", store
    )
    assert cli.fails("keys", "rotate", "0123456789abcdef", "--store", store) == (
        "error: no API key with id '0123456789abcdef'"
    )


def test_serve_refuses_bad_limits_and_origins_in_one_line(cli: Cli) -> None:
    store = ("--store", f"sqlite:///{cli.folder}/served.db", "--port", "0")
    assert "a rate limit reads KIND=COUNT/UNIT" in cli.fails(
        "serve", DEMO_APP, *store, "--rate-limit", "writes=10"
    )
    assert "a CORS origin is scheme://host[:port]" in cli.fails(
        "serve", DEMO_APP, *store, "--cors-origin", "shop.example.com"
    )
    assert (
        cli.fails("serve", DEMO_APP, *store, "--rate-limit", "write=1/s", "--no-rate-limits")
        == "error: give --rate-limit or --no-rate-limits, not both"
    )
