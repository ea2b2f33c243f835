"""``textnlp users`` given what it cannot use: no terminal to ask a password on, an empty
password, a spending cap that is no amount. One line on stderr, exit 2, nothing stored."""

from __future__ import annotations

import pytest

from tests.e2e.test_cli_errors import assert_one_line_exit_2, textnlp

NO_TERMINAL = "error: no terminal to ask the password on: pass it on standard input with "


@pytest.mark.parametrize(
    "command", [["users", "create", "alice", "--admin"], ["users", "password", "alice"]]
)
def test_no_terminal_to_ask_the_password_on(command: list[str]) -> None:
    result = textnlp(*command)  # stdin is a pipe, as in a script
    assert_one_line_exit_2(result, NO_TERMINAL + "--password-stdin")
    assert result.stdout == ""
    assert textnlp("users", "list").stdout == ""  # nobody was created


@pytest.mark.parametrize("stdin", ["", "\n", "\r\n"], ids=["nothing", "newline", "crlf"])
def test_an_empty_password_on_stdin(stdin: str) -> None:
    result = textnlp("users", "create", "alice", "--password-stdin", stdin=stdin)
    assert_one_line_exit_2(result, "empty password on standard input")
    assert textnlp("users", "list").stdout == ""


@pytest.mark.parametrize("amount", ["-1", "-0.5", "nan", "inf", "-inf", "1e400"])
def test_a_spending_cap_that_is_no_amount(amount: str) -> None:
    # -1 is read as an amount, not as an option "-1" that does not exist
    result = textnlp("users", "spending-cap", "alice", amount)
    assert_one_line_exit_2(result, "a spending cap is 0 or more US dollars (got ")
    assert result.stdout == ""


def test_a_spending_cap_of_zero_or_more() -> None:
    created = textnlp("users", "create", "alice", "--password-stdin", stdin="alice-pass-1\n")
    assert created.returncode == 0, created.stderr
    capped = textnlp("users", "spending-cap", "alice", "0")
    assert capped.returncode == 0 and "alice: spending cap $0.0000" in capped.stdout
    # A cap of a hundredth of a cent shows as the costs it is compared with do, not as $0.00.
    tiny = textnlp("users", "spending-cap", "alice", "0.0001")
    assert tiny.returncode == 0 and "alice: spending cap $0.0001, $0.0000 spent" in tiny.stdout
