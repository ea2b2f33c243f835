"""``textnlp users create NAME [--admin]``, ``textnlp users api-key NAME`` and
``textnlp users spending-cap NAME [USD]``: bootstrap accounts, set a user's own spending cap.

The password comes from ``--password-stdin`` or an interactive prompt, never an argument (it
would land in the shell history and the process list).
"""

from __future__ import annotations

import sys

import typer

from textnlp.cli.common import console, platform
from textnlp.extras import require_extra

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
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with platform() as parts:
        user = parts.auth.create_user(name, password, "admin" if admin else "user")
    console.print(f"created {user.role} {user.username} ({user.id})")


@users_app.command("api-key")
def api_key(
    name: str = typer.Argument(..., help="The user the key belongs to."),
    label: str = typer.Option("default", "--label", help="A name for the key."),
) -> None:
    """Create an API key for a user (service account); it is printed once."""
    with platform() as parts:
        service = parts.auth
        _, key = service.create_api_key(service.user(name), label)
    print(key)


@users_app.command("spending-cap")
def spending_cap(
    name: str = typer.Argument(..., help="The user."),
    usd: float | None = typer.Argument(
        None, min=0.0, help="Cap in US dollars; omit to fall back to the default of the settings."
    ),
) -> None:
    """Set a user's own spending cap on priced models (direct generations and jobs)."""
    with platform() as parts:
        budget = parts.spending.set_user_cap(name, usd)
    shown = "none" if budget.limit_usd is None else f"${budget.limit_usd:.2f}"
    default = " (the default)" if usd is None else ""
    console.print(f"{name}: spending cap {shown}{default}, ${budget.spent_usd:.4f} spent")


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
