"""``textnlp users`` as an operator runs it: the local profile's database in the test's own
``TEXTNLP_HOME``, each command a process of its own."""

from __future__ import annotations

from tests.e2e.test_cli_errors import assert_one_line_exit_2, textnlp


def test_an_operator_manages_users_from_the_cli() -> None:
    assert (
        textnlp(
            "users", "create", "root", "--admin", "--password-stdin", stdin="root-pass-1\n"
        ).returncode
        == 0
    )
    assert (
        textnlp("users", "create", "ann", "--password-stdin", stdin="ann-pass-12\n").returncode == 0
    )
    assert_one_line_exit_2(
        textnlp("users", "create", "Ann", "--password-stdin", stdin="x" * 9 + "\n"),
        "already exists",
    )
    assert_one_line_exit_2(textnlp("users", "disable", "root"), "last active admin")
    assert_one_line_exit_2(textnlp("users", "role", "root", "user"), "last active admin")
    assert_one_line_exit_2(textnlp("users", "disable", "nobody"), "no user 'nobody'")
    assert_one_line_exit_2(
        textnlp("users", "password", "ann", "--password-stdin", stdin="short\n"), "8 to 1024"
    )
    disabled = textnlp("users", "disable", "ann")
    assert disabled.returncode == 0 and "ann (user): disabled" in disabled.stdout
    listed = textnlp("users", "list").stdout.splitlines()
    assert [line.split("\t")[:3] for line in listed] == [
        ["ann", "user", "disabled"],
        ["root", "admin", "active"],
    ]
    assert textnlp("users", "enable", "ann").returncode == 0
    assert textnlp("users", "role", "ann", "admin").returncode == 0
    assert textnlp("users", "role", "root", "user").returncode == 0  # ann is an admin now
    reset = textnlp("users", "password", "ann", "--password-stdin", stdin="ann-new-pass\n")
    assert reset.returncode == 0 and "sessions ended" in reset.stdout
    assert textnlp("users", "logout", "ann").returncode == 0
    # A leaked service-account key, revoked by the operator (only its owner could, before).
    made = textnlp("users", "api-key", "ann", "--name", "ci")
    assert made.returncode == 0, made.stderr
    (line,) = textnlp("users", "api-keys", "ann").stdout.splitlines()
    key_id, state, _, label = line.split("\t")
    assert (state, label) == ("active", "ci") and key_id in made.stdout
    assert made.stdout.strip() not in line  # never the secret
    revoked = textnlp("users", "revoke-key", "ann", key_id)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert textnlp("users", "api-keys", "ann").stdout.split("\t")[1] == "revoked"
    assert_one_line_exit_2(textnlp("users", "revoke-key", "root", key_id), "no API key")
