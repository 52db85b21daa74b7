"""``beacon users``: accounts of the statistics dashboard and their API tokens.

::

    beacon users add NAME [--role viewer|admin] [--password-stdin]
    beacon users passwd NAME [--password-stdin]
    beacon users list
    beacon users remove NAME
    beacon users token NAME [--label TEXT]

Without ``--password-stdin`` the password is asked twice on the terminal
(never echoed); with it, the first line of standard input is the password
(for automation). ``token`` prints a new API token once: only its SHA-256
is stored. Every command takes ``--url URL`` (default:
``BEACON_CLICKHOUSE_URL`` or ``.data/``). Exit status: 0 done, 1 refused
(bad name, weak or mismatched password, unknown account), 2 the store cannot
be used.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import IO, TextIO

from beacon.auth import ROLES, AccountError, AccountStore
from beacon.exceptions import StoreError
from beacon.migrations import migrate
from beacon.store import open_store

__all__ = ["read_password", "register"]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_STORE = 2

_Handler = Callable[[AccountStore, argparse.Namespace, IO[str]], int]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``users`` and its sub-commands to the ``beacon`` command line."""
    parser = subparsers.add_parser(
        "users",
        help="manage the statistics dashboard's accounts",
        description="Accounts (viewer or admin) and API tokens of the statistics dashboard.",
    )
    commands = parser.add_subparsers(dest="users_command", metavar="COMMAND", required=True)

    def command(name: str, handler: _Handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--url", help="store URL (default: BEACON_CLICKHOUSE_URL or .data/)")
        sub.set_defaults(func=lambda args: _run(handler, args))
        return sub

    add = command("add", _add, "create an account")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="viewer", help="default: %(default)s")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    passwd = command("passwd", _passwd, "change an account's password")
    passwd.add_argument("name")
    passwd.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    command("list", _list, "list the accounts")
    remove = command("remove", _remove, "delete an account and revoke its tokens")
    remove.add_argument("name")
    token = command("token", _token, "create an API token for an account (shown once)")
    token.add_argument("name")
    token.add_argument("--label", default="", help="a note to recognise the token")


def read_password(from_stdin: bool, stdin: TextIO, err: TextIO) -> str:
    """The new password: first line of ``stdin``, or typed twice on the terminal."""
    if from_stdin:
        return stdin.readline().rstrip("\r\n")
    if not stdin.isatty():
        raise AccountError("no terminal to ask the password on: use --password-stdin")
    first = getpass.getpass("Password: ", stream=err)
    second = getpass.getpass("Password (again): ", stream=err)
    if first != second:
        raise AccountError("the two passwords differ")
    return first


def _add(accounts: AccountStore, args: argparse.Namespace, out: IO[str]) -> int:
    password = read_password(args.password_stdin, sys.stdin, sys.stderr)
    account = accounts.add(args.name, password, args.role)
    out.write(f"account {account.name} created ({account.role})\n")
    return EXIT_OK


def _passwd(accounts: AccountStore, args: argparse.Namespace, out: IO[str]) -> int:
    password = read_password(args.password_stdin, sys.stdin, sys.stderr)
    accounts.set_password(args.name, password)
    out.write(f"password of {args.name} changed\n")
    return EXIT_OK


def _list(accounts: AccountStore, args: argparse.Namespace, out: IO[str]) -> int:
    users = accounts.list()
    width = max((len(user.name) for user in users), default=4)
    out.write(f"{'name'.ljust(width)}  role    created\n")
    for user in users:
        created = user.created_at.strftime("%Y-%m-%d")
        out.write(f"{user.name.ljust(width)}  {user.role.ljust(6)}  {created}\n")
    return EXIT_OK


def _remove(accounts: AccountStore, args: argparse.Namespace, out: IO[str]) -> int:
    accounts.remove(args.name)
    out.write(f"account {args.name} removed\n")
    return EXIT_OK


def _token(accounts: AccountStore, args: argparse.Namespace, out: IO[str]) -> int:
    token = accounts.create_token(args.name, args.label)
    sys.stderr.write(f"API token of {args.name} (shown only once; only its hash is stored):\n")
    out.write(token + "\n")
    return EXIT_OK


def _run(handler: _Handler, args: argparse.Namespace) -> int:
    try:
        store = open_store(args.url)
    except StoreError as exc:
        sys.stderr.write(f"beacon users: {exc}\n")
        return EXIT_STORE
    try:
        migrate(store)
        return handler(AccountStore(store), args, sys.stdout)
    except AccountError as exc:
        sys.stderr.write(f"beacon users: {exc}\n")
        return EXIT_REFUSED
    except StoreError as exc:
        sys.stderr.write(f"beacon users: {exc}\n")
        return EXIT_STORE
    finally:
        store.close()
