"""``textnlp users ...``: the operator's user management.

``create NAME [--admin]``, ``list``, ``disable``/``enable NAME`` (a disabled user is refused
everywhere at once), ``role NAME admin|user``, ``password NAME`` (a new password ends the
user's sessions), ``logout NAME`` (ends them alone), ``api-key NAME``, ``api-keys NAME`` (the
user's keys, never their secrets), ``revoke-key NAME KEY_ID`` (a leaked key, at once) and
``spending-cap NAME [USD]``. The last active admin cannot be disabled or demoted.

A password comes from ``--password-stdin`` or an interactive prompt, never an argument (it
would land in the shell history and the process list).
"""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, Literal

import typer

from textnlp.backends.pricing import usd as money
from textnlp.cli.common import console, platform
from textnlp.errors import InvalidInput
from textnlp.extras import require_extra

if TYPE_CHECKING:
    from textnlp.adapters.db.users import User

users_app = typer.Typer(help="Manage API users and their API keys.", no_args_is_help=True)


@users_app.command("create")
def create(
    name: str = typer.Argument(..., help="User name."),
    admin: bool = typer.Option(False, "--admin", help="Give the user the admin role."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input."
    ),
) -> None:
    """Create a user (argon2id-hashed password)."""
    require_extra("api", "users create")  # before the password is typed in vain
    password = _read_password(password_stdin)
    with platform() as parts:
        user = parts.auth.create_user(name, password, "admin" if admin else "user")
    console.print(f"created {user.role} {user.username} ({user.id})")


@users_app.command("list")
def list_users() -> None:
    """Every user, a line each: name, role, active or disabled, id (tab-separated)."""
    with platform() as parts:
        users = parts.auth.users()
    for user in users:
        state = "active" if user.active else "disabled"
        print(f"{user.username}\t{user.role}\t{state}\t{user.id}")  # plain: for scripts


@users_app.command("disable")
def disable(name: str = typer.Argument(..., help="User name.")) -> None:
    """Refuse the user everywhere at once: tokens, API keys, the console, open WebSockets."""
    with platform() as parts:
        _report(parts.auth.set_active(name, False), "disabled")


@users_app.command("enable")
def enable(name: str = typer.Argument(..., help="User name.")) -> None:
    """Let a disabled user in again."""
    with platform() as parts:
        _report(parts.auth.set_active(name, True), "enabled")


@users_app.command("role")
def role(
    name: str = typer.Argument(..., help="User name."),
    new_role: Literal["admin", "user"] = typer.Argument(..., metavar="ROLE", help="admin or user."),
) -> None:
    """Make a user an admin, or a plain user."""
    with platform() as parts:
        _report(parts.auth.set_role(name, new_role), f"now {new_role}")


@users_app.command("password")
def password(
    name: str = typer.Argument(..., help="User name."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input."
    ),
) -> None:
    """Set a new password; every session of the user ends (API keys stay)."""
    require_extra("api", "users password")
    new_password = _read_password(password_stdin)
    with platform() as parts:
        _report(parts.auth.set_password(name, new_password), "has a new password; sessions ended")


@users_app.command("logout")
def logout(name: str = typer.Argument(..., help="User name.")) -> None:
    """End every session of the user (tokens, console); API keys stay (users revoke-key)."""
    with platform() as parts:
        _report(parts.auth.end_sessions(name), "logged out everywhere")


def _read_password(from_stdin: bool) -> str:
    """The first line of standard input, or else typed in twice on the terminal. Without one
    (a script, ``</dev/null``) there is no one to ask: say so rather than let getpass warn."""
    if from_stdin:
        line = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
        if not line:
            raise InvalidInput("empty password on standard input (--password-stdin)")
        return line
    if not sys.stdin.isatty():
        raise InvalidInput(
            "no terminal to ask the password on: pass it on standard input with --password-stdin"
        )
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _report(user: User, what: str) -> None:
    console.print(f"{user.username} ({user.role}): {what}", markup=False)


@users_app.command("api-key")
def api_key(
    name: str = typer.Argument(..., help="The user the key belongs to."),
    label: str = typer.Option(
        "default",
        "--name",
        "--label",
        help="The key's name (the API's 'name' of POST /auth/api-keys).",
    ),
) -> None:
    """Create an API key for a user (service account); it is printed once."""
    with platform() as parts:
        service = parts.auth
        _, key = service.create_api_key(service.user(name), label)
    print(key)


@users_app.command("api-keys")
def api_keys(name: str = typer.Argument(..., help="The user whose keys to list.")) -> None:
    """A user's API keys, a line each: id, active or revoked, created, name (tab-separated;
    a key's secret is never stored)."""
    with platform() as parts:
        service = parts.auth
        keys = service.list_api_keys(service.user(name))
    for key in keys:
        state = "revoked" if key["revoked"] else "active"
        created = key["created_at"].isoformat(timespec="seconds")
        print(f"{key['id']}\t{state}\t{created}\t{key['name']}")  # plain: for scripts


@users_app.command("revoke-key")
def revoke_key(
    name: str = typer.Argument(..., help="The user the key belongs to."),
    key_id: str = typer.Argument(..., help="The key's id (`users api-keys NAME` lists them)."),
) -> None:
    """Revoke one of a user's API keys (a leaked service-account key); refused at once."""
    with platform() as parts:
        service = parts.auth
        service.revoke_api_key(service.user(name), key_id)
    console.print(f"{name}: API key {key_id} revoked", markup=False)


# ignore_unknown_options: ``-1`` is an amount (refused below), not an option that does not exist.
@users_app.command("spending-cap", context_settings={"ignore_unknown_options": True})
def spending_cap(
    name: str = typer.Argument(..., help="The user."),
    usd: float | None = typer.Argument(
        None, help="Cap in US dollars; omit to fall back to the default of the settings."
    ),
) -> None:
    """Set a user's own spending cap on priced models (direct generations and jobs)."""
    if usd is not None and not (math.isfinite(usd) and usd >= 0):  # nan passes a min=0 check
        raise InvalidInput(f"a spending cap is 0 or more US dollars (got {usd:g})")
    with platform() as parts:
        budget = parts.spending.set_user_cap(name, usd)
    shown = "none" if budget.limit_usd is None else money(budget.limit_usd)
    default = " (the default)" if usd is None else ""
    console.print(f"{name}: spending cap {shown}{default}, {money(budget.spent_usd)} spent")


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
