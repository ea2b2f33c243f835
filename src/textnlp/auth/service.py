"""Auth use cases: users, login, refresh rotation, logout, API keys.

Sync (SQLAlchemy sessions, boto3); the API calls it from its thread pool. Users and API keys
live in the database; refresh-token families and revocations in the session store
(``textnlp.adapters.sessions``: the database's tables, or DynamoDB in the ``aws`` profile).
Each write is one transaction or one conditional request, so a failure leaves nothing
half-written: a login whose family was not stored hands out no tokens.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy.orm import sessionmaker

from textnlp.adapters.db.users import ApiKeyRepository, RoleName, User, UserRepository
from textnlp.auth import api_keys, passwords
from textnlp.auth.rules import check_key_name, check_password, username_skeleton
from textnlp.auth.tokens import TokenClaims, TokenPair, TokenService
from textnlp.errors import AuthError, Conflict, InvalidInput, NotFound, TextNLPError, quoted

if TYPE_CHECKING:
    from textnlp.adapters.sessions.base import SessionStore

_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, and how they proved it."""

    user: User
    via: Literal["token", "api_key"]
    #: The access token's claims (None for API keys).
    claims: TokenClaims | None = None
    #: The rate-limit bucket: the user's, whether they come with a token or any of their API
    #: keys (a bucket per key would let a user multiply their limit by minting keys).
    bucket: str = ""
    #: The API key's id (None for tokens).
    key_id: str | None = None

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def role(self) -> RoleName:
        return self.user.role

    @property
    def is_admin(self) -> bool:
        return self.user.is_admin


log = logging.getLogger("textnlp.auth")
#: How often, at most, a process forgets expired token families and revocations.
PURGE_EVERY_S = 600.0
_INVALID_LOGIN = "invalid username or password"
_SESSION_ENDED = "session ended (a new password, or logged out by an operator): log in again"


class AuthService:
    def __init__(
        self,
        sessions: sessionmaker[Any],
        tokens: TokenService,
        store: SessionStore | None = None,
    ) -> None:
        """``store``: where families and revocations live; the database's tables by default."""
        self.sessions = sessions
        self.tokens = tokens
        if store is None:
            from textnlp.adapters.sessions.database import DatabaseSessionStore

            store = DatabaseSessionStore(sessions)
        self.store = store
        self._purged_at = -math.inf

    # Users -----------------------------------------------------------------------------------
    def create_user(self, username: str, password: str, role: RoleName = "user") -> User:
        if not _USERNAME.fullmatch(username):  # fullmatch: "$" would let a final newline in
            raise InvalidInput("a username is 1-64 ASCII letters, digits or _ . @ -")
        check_password(password)
        password_hash = passwords.hash_password(password)
        with self.sessions.begin() as session:
            users = UserRepository(session)
            # One creation at a time, or two lookalikes created at once would both pass.
            users.lock_users()
            # "aIice" beside "alice" would pass for her (an operator's act: every name is
            # looked at, which a few thousand users make cheap).
            skeleton = username_skeleton(username)
            for existing in users.usernames():
                if existing.lower() != username.lower() and username_skeleton(existing) == skeleton:
                    raise Conflict(
                        f"{username!r} looks like the existing user {existing!r}: "
                        "choose another name",
                        username=username,
                    )
            return users.create(username, password_hash, role)

    # Tokens ----------------------------------------------------------------------------------
    def login(self, username: str, password: str) -> TokenPair:
        with self.sessions.begin() as session:
            users = UserRepository(session)
            found = users.by_name(username)
            if found is None:
                passwords.burn_verification(password)
                raise AuthError(_INVALID_LOGIN)
            user, password_hash = found
            if not passwords.verify_password(password_hash, password) or not user.active:
                raise AuthError(_INVALID_LOGIN)
            if passwords.needs_rehash(password_hash):
                users.set_password_hash(user.id, passwords.hash_password(password))
        pair = self.tokens.issue_pair(user.id, user.role, session_epoch=user.session_epoch)
        self.store.start_family(
            pair.refresh_claims.family,
            user.id,
            pair.refresh_claims.jti,
            float(pair.refresh_claims.exp),
        )
        self._purge_now_and_then()
        return pair

    def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate: the presented token dies; presenting a dead one revokes its whole family,
        except the token the family rotated from within ``auth.refresh_reuse_grace_s``: the
        loser of two refreshes with one token is refused and the winner's session lives."""
        claims = self.tokens.verify(refresh_token, expected_type="refresh")
        with self.sessions() as session:
            user = UserRepository(session).get(claims.sub)
        if user is None or not user.active:
            raise AuthError("unknown or disabled user")
        if _ended(user, claims):
            self.store.revoke_family(claims.family)
            raise AuthError(_SESSION_ENDED)
        pair = self.tokens.issue_pair(
            user.id, user.role, family=claims.family, session_epoch=user.session_epoch
        )
        rotated = self.store.rotate(
            claims.family, claims.jti, pair.refresh_claims.jti, float(pair.refresh_claims.exp)
        )
        if not rotated:
            grace = self.tokens.refresh_reuse_grace_s
            if grace > 0 and self.store.rotated_from(
                claims.family, claims.jti, time.time() - grace
            ):
                raise AuthError("refresh token already used by a refresh a moment ago")
            self.store.revoke_family(claims.family)
            raise AuthError("refresh token reused or revoked; the session is closed")
        return pair

    def logout(self, claims: TokenClaims) -> None:
        self.store.revoke_jti(claims.jti, float(claims.exp))
        self.store.revoke_family(claims.family)
        self._purge_now_and_then()

    def _purge_now_and_then(self) -> None:
        """Forget expired families and revocations, at most every ``PURGE_EVERY_S`` per
        process: at logins too, since API clients mostly let their tokens expire instead of
        logging out (purged at logouts alone, the tables grew without bound)."""
        now = time.monotonic()
        if now - self._purged_at < PURGE_EVERY_S:
            return
        self._purged_at = now
        try:
            self.store.purge_expired()
        except TextNLPError as exc:  # housekeeping: a login or logout never fails for it
            log.warning(
                "could not purge expired sessions (next try in %.0f s): %s", PURGE_EVERY_S, exc
            )

    def authenticate(self, credential: str) -> Principal:
        """The principal behind an access token or an API key; ``AuthError`` otherwise."""
        if api_keys.is_api_key(credential):
            return self._authenticate_key(credential)
        return self._token_principal(self.tokens.verify(credential, expected_type="access"))

    def hold(self, principal: Principal) -> dict[str, Any]:
        """What a long-lived connection keeps of its caller to check it again at each request
        (``recheck``): the token's claims or the key's id, never the credential itself."""
        claims = asdict(principal.claims) if principal.claims is not None else None
        return {"user_id": principal.id, "claims": claims, "key_id": principal.key_id}

    def recheck(self, held: Mapping[str, Any]) -> Principal:
        """The caller ``hold`` kept, if its credential still stands: the token neither expired
        nor logged out, the key not revoked, the user active; ``AuthError`` otherwise."""
        claims, key_id = held.get("claims"), held.get("key_id")
        if isinstance(claims, dict):
            token = TokenClaims(**claims)
            if token.exp <= time.time():  # verified once, at the handshake: expiry is not
                raise AuthError("token expired")
            principal = self._token_principal(token)
        elif isinstance(key_id, str):
            principal = self._key_principal(key_id, None)
        else:
            raise AuthError("unknown or expired connection: connect again")
        if principal.id != held.get("user_id"):
            raise AuthError("unknown or disabled user")
        return principal

    def console_session(self, refresh_token: str) -> Principal:
        """The principal of a console session cookie: its family's current refresh token.

        The console never rotates it (see ``textnlp.api.console.session``); a logout, a revoked
        family or a disabled user ends the session. A refresh token the family has rotated past
        has leaked, as in ``refresh``: presenting it closes the family."""
        claims = self.tokens.verify(refresh_token, expected_type="refresh")
        user = self.store.session_holder(claims.sub, claims.family, claims.jti)
        if user is None:
            self.store.revoke_family(claims.family)
            raise AuthError("session revoked")
        return _token_holder(user, claims)

    # Operators' user management (``textnlp users``) -------------------------------------------
    def users(self) -> list[User]:
        with self.sessions() as session:
            return UserRepository(session).all()

    def usernames(self, user_ids: Iterable[str]) -> dict[str, str]:
        """id -> username of the users among ``user_ids`` (a deleted one is missing)."""
        with self.sessions() as session:
            return UserRepository(session).names(user_ids)

    def set_active(self, username: str, active: bool) -> User:
        """Enable or disable a user: a disabled one is refused everywhere (tokens, keys, the
        console, open WebSockets) until enabled again. The last active admin stays."""
        return self._change(username, active=active)

    def set_role(self, username: str, role: RoleName) -> User:
        """Make a user an admin or a plain user; the last active admin stays one."""
        return self._change(username, role=role)

    def set_password(self, username: str, password: str) -> User:
        """A new password; every session of the user ends (API keys stay)."""
        check_password(password)
        password_hash = passwords.hash_password(password)
        return self._change(username, end_sessions=True, password_hash=password_hash)

    def end_sessions(self, username: str) -> User:
        """End every session of the user: their tokens and console sessions (API keys stay)."""
        return self._change(username, end_sessions=True)

    def _change(self, username: str, *, end_sessions: bool = False, **values: Any) -> User:
        with self.sessions.begin() as session:
            users = UserRepository(session)
            # Held until the commit: two operators disabling the last two admins at once would
            # each count the other still active (write skew under READ COMMITTED).
            users.lock_users()
            found = users.by_name(username)
            if found is None:
                raise NotFound(f"no user {quoted(username)}")
            user = found[0]
            if values:
                users.update(user.id, **values)
            if end_sessions:
                users.next_session_epoch(user.id)
            losing_admin = (
                user.is_admin
                and user.active
                and (values.get("active") is False or values.get("role") == "user")
            )
            if losing_admin and users.count_active_admins() == 0:
                raise Conflict(
                    f"{username} is the last active admin; make another admin first"
                )  # the transaction rolls back
            changed = users.get(user.id)
        assert changed is not None
        return changed

    def user(self, username: str) -> User:
        """The user called ``username``; ``NotFound`` when there is none."""
        with self.sessions() as session:
            found = UserRepository(session).by_name(username)
        if found is None:
            raise NotFound(f"no user {quoted(username)}")
        return found[0]

    # API keys --------------------------------------------------------------------------------
    def create_api_key(
        self, user: User, name: str, *, max_active: int | None = None
    ) -> tuple[str, str]:
        """(key id, full key): the key is shown once and stored only as a hash. ``Conflict``
        when the user already holds ``max_active`` live keys (None: no cap, the operator's
        CLI; every key shares its owner's rate-limit bucket anyway)."""
        check_key_name(name)
        new = api_keys.generate_api_key()
        with self.sessions.begin() as session:
            ApiKeyRepository(session).add(
                new.key_id, user.id, name, new.secret_hash, max_active=max_active
            )
        return new.key_id, new.plaintext

    def list_api_keys(self, user: User) -> list[dict[str, Any]]:
        with self.sessions() as session:
            rows = ApiKeyRepository(session).list_for(user.id)
            return [
                {"id": r.id, "name": r.name, "revoked": r.revoked, "created_at": r.created_at}
                for r in rows
            ]

    def revoke_api_key(self, user: User, key_id: str) -> None:
        with self.sessions.begin() as session:
            ApiKeyRepository(session).revoke(key_id, user.id)

    def _authenticate_key(self, credential: str) -> Principal:
        parsed = api_keys.parse_api_key(credential)
        if parsed is None:
            raise AuthError("malformed API key")
        return self._key_principal(*parsed)

    def _token_principal(self, claims: TokenClaims) -> Principal:
        """The holder of a verified access token while its session lives."""
        user = self.store.access_holder(claims.sub, claims.family, claims.jti)
        if user is None:
            raise AuthError("token revoked")
        return _token_holder(user, claims)

    def _key_principal(self, key_id: str, secret: str | None) -> Principal:
        """The owner of a live key; ``secret`` None: a key checked already (``recheck``)."""
        with self.sessions() as session:
            found = ApiKeyRepository(session).find(key_id)
            user = UserRepository(session).get(found[0]) if found else None
        if found is None:
            raise AuthError("invalid API key" if secret is not None else "API key revoked")
        if secret is not None and not api_keys.secret_matches(secret, found[1]):
            raise AuthError("invalid API key")
        if user is None or not user.active:
            raise AuthError("unknown or disabled user")
        return Principal(user=user, via="api_key", bucket=user_bucket(user), key_id=key_id)


def _token_holder(user: User, claims: TokenClaims) -> Principal:
    """The principal of a token the session store found live, while its user may still use it."""
    if not user.active:
        raise AuthError("unknown or disabled user")
    if _ended(user, claims):
        raise AuthError(_SESSION_ENDED)
    return Principal(user=user, via="token", claims=claims, bucket=user_bucket(user))


def _ended(user: User, claims: TokenClaims) -> bool:
    """Whether the token was issued before the user's sessions were ended (``end_sessions``):
    in another session epoch. A token issued while the end commits carries the old epoch."""
    return claims.session_epoch != user.session_epoch


def user_bucket(user: User) -> str:
    return f"user:{user.id}"


def expires_in(pair: TokenPair) -> int:
    return max(0, pair.access_claims.exp - int(time.time()))
