"""Staff sign-in, sessions and accounts over HTTP (declared in services/gateway/api.py).

The rules are in accounts.py, the SQL in store.py. Three things here are easy to get wrong:
- a refusal must still be audited, and a failure counted, although the worker's transaction is
  rolled back on any exception; so those are committed (`self.db.finish(commit=True)`) before raising;
- argon2 costs tens of milliseconds of CPU and 19 MiB; run on the eventlet hub it would stall every other
  request of the process, so it runs in a native thread (eventlet.tpool), two at a time at most, and no
  database connection is held while it runs (the pool has one or two);
- the address the limits count is the caller's, behind the TRUSTED_PROXIES only.
"""
import hmac

from eventlet import tpool
from eventlet.semaphore import Semaphore
from werkzeug.wrappers import Response

from services.gateway import accounts, store
from services.gateway import schemas as s
from services.gateway.auth import PERMISSIONS, Principal
from services.gateway.declared import BY_NAME
from services.gateway.http import api, json_body
from services.gateway.routes import reply
from shared.errors import Conflict, DomainError, Forbidden, NotFound, Unauthorized, ValidationFailed, load


class TooManyAttempts(DomainError):
    """429: sign-in refused for a while (a locked account, or too many failures from one address).
    Raised in the gateway only (never crosses RPC), so it may carry `retry_after`."""
    status = 429
    title = "Too many attempts"

    def __init__(self, message, fields=None, retry_after=60):
        super().__init__(message, fields)
        self.retry_after = retry_after


UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SIGN_IN_FAILED = "the user name or password is wrong"
UNKNOWN = "(unknown)"   # the audit's user name for a name no account has: what was typed is not kept
# Hashes at once per process: a burst of sign-ins queues here rather than growing the pod's memory.
HASHING = Semaphore(2)


def hashed(fn, *args):
    """`fn(*args)` (an argon2 hash or check) in a native thread, two at a time."""
    with HASHING:
        return tpool.execute(fn, *args)


def account_view(row):
    return {"id": row["account_id"], "username": row["username"], "display_name": row["display_name"],
            "role": row["role"], "node_prefix": row["node_prefix"], "organization_id": row["organization_id"],
            "must_change_password": row["must_change_password"], "disabled": row["disabled_at"] is not None,
            "locked_until": row.get("locked_until"), "last_sign_in_at": row.get("last_sign_in_at"),
            "created_at": row.get("created_at")}


def principal_of(row):
    """The Principal of a live session's account: the same role and scope a token would carry, acting
    as `account:<username>:<display name>` in every service's audit."""
    return Principal(row["username"], row["display_name"], row["role"], row["node_prefix"], row["organization_id"],
                     kind="account")


class SessionRoutes:

    # -- the session cookie, for _principal and the routes below ------------------------------------------

    def _trusted(self):
        return accounts.trusted_networks(self.config.get("TRUSTED_PROXIES"))

    def _address(self, request):
        return accounts.client_address(request.remote_addr, request.headers.get("X-Forwarded-For"), self._trusted())

    def _live_session(self, request, check_csrf):
        """The live session row of the request's cookie, or None. A session found idle or past its end is
        ended here (and audited once). A change made with the cookie must carry the session's CSRF token."""
        value = request.cookies.get(accounts.COOKIE)
        if not value or len(value) > 200:
            return None
        row = self.db.one(store.SESSION, (accounts.session_hash(value),))
        if row is None:
            return None
        state = accounts.session_state(row, row["now"])
        if state != "live":
            if state in ("idle", "expired") and self.db.execute(store.END_SESSION, (row["session_hash"],)).rowcount:
                store.audit(self.db, "expired", row["username"], row["account_id"], self._address(request), "system")
            return None
        if check_csrf and request.method in UNSAFE:
            sent = request.headers.get(accounts.CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), row["csrf_token"].encode()):
                raise Forbidden("a change made with the session cookie must carry its CSRF token",
                                {accounts.CSRF_HEADER: ["missing or wrong: send the csrf_token of GET /api/v1/session"]})
        if row["now"] - row["last_seen_at"] >= accounts.TOUCH_EVERY:
            self.db.execute(store.TOUCH_SESSION, (row["session_hash"],))
        return row

    def _session_principal(self, request):
        row = self._live_session(request, check_csrf=True)
        if row is None:
            self.db.finish(commit=True)   # keep an expiry just audited
            raise Unauthorized("your session has ended; sign in again", {accounts.COOKIE: ["no live session"]})
        if row["must_change_password"]:
            raise Forbidden("change your password before anything else",
                            {"password": ["must be changed first: POST /api/v1/session/password"]})
        return principal_of(row)

    def _session_body(self, row, csrf_token, expires_at):
        return {"account": account_view(row), "csrf_token": csrf_token, "expires_at": expires_at,
                "permissions": sorted(p for p, roles in PERMISSIONS.items() if row["role"] in roles),
                "idle_minutes": int(accounts.IDLE.total_seconds() // 60),
                "instance": {"code": self.config["NODE_CODE"], "level": self.config["LEVEL"],
                             "name": self.config.get("INSTANCE")}}

    def _set_cookie(self, response, request, value, max_age):
        secure = request.is_secure or accounts.behind_tls(request.remote_addr, request.headers.get("X-Forwarded-Proto"),
                                                         self._trusted())
        response.set_cookie(accounts.COOKIE, value, max_age=max_age, path="/", httponly=True, secure=secure,
                            samesite="Strict")
        return response

    # -- sign-in and the session ---------------------------------------------------------------------------

    def _refuse(self, verdict, username, account_id, address):
        """Audit a refusal (at most one per address a minute: a refusal costs the caller nothing, and must
        not cost the table a row each), then refuse with the wait."""
        if not self.db.one(store.RECENT_REFUSAL, (address,)):
            store.audit(self.db, verdict.event, username, account_id, address, "anonymous")
        self.db.finish(commit=True)
        minutes = -(-verdict.retry_after // 60)
        if verdict.event == "refused_address":
            raise TooManyAttempts(f"too many failed sign-ins from this address: try again in {minutes} minute(s)",
                                  {"address": ["too many failed sign-ins from here"]}, retry_after=verdict.retry_after)
        raise TooManyAttempts(f"too many failed attempts: try again in {minutes} minute(s)",
                              {"username": ["sign-in is locked for now"]}, retry_after=verdict.retry_after)

    def _new_session(self, request, account_id, address):
        value, digest, csrf = accounts.new_session()
        self.db.execute(store.INSERT_SESSION, (digest, account_id, csrf, address, accounts.ABSOLUTE))
        return value, digest, csrf

    @api("POST", "/api/v1/session")
    def sign_in(self, request):
        body = load(s.SignInSchema, json_body(request))
        username, address = accounts.normal_username(body["username"]), self._address(request)
        key = accounts.name_key(self.config.get("PSEUDONYM_SECRET"), username)
        failures = self.db.one(store.ADDRESS_FAILURES, (address, accounts.ADDRESS_WINDOW))
        account = self.db.one(store.ACCOUNT_BY_USERNAME, (username,))
        named = username if account else UNKNOWN
        counted = account or self.db.one(store.UNKNOWN_NAME, (key,))
        refused = accounts.refusal(counted, failures["now"], failures["n"])
        if refused:
            self._refuse(refused, named, account and account["account_id"], address)
        # No connection is held while the password is checked: the pool has one or two.
        self.db.finish(commit=True)
        checked = account and account["password_hash"]
        ok = hashed(accounts.verify_password, checked, body["password"])
        if ok:
            # Locked the row, and looked again: another attempt may have locked or disabled it meanwhile,
            # or an admin reset the password that was just checked.
            account = self.db.one(store.ACCOUNT_FOR_SIGN_IN, (username,))
            ok = account["password_hash"] == checked
        if ok:
            refused = accounts.refusal(account, self.db.one(store.NOW)["now"], 0)
            if refused:
                self._refuse(refused, named, account["account_id"], address)
            failures_now = 0
        elif account is not None:
            failures_now = self.db.one(store.FAILED, (account["account_id"],))["failed_attempts"]
        else:
            failures_now = self.db.one(store.UNKNOWN_NAME_FAILED, (key,))["failed_attempts"]
        verdict = accounts.verdict(account, ok, failures_now)
        account_id = account["account_id"] if account else None
        if not verdict.ok:
            if verdict.lock and account is not None:
                self.db.execute(store.LOCK, (accounts.LOCK_FOR, account_id))
            elif verdict.lock:
                self.db.execute(store.UNKNOWN_NAME_LOCK, (accounts.LOCK_FOR, key))
            if verdict.event != "refused_disabled":
                store.audit(self.db, "failed", named, account_id, address, "anonymous")
            if verdict.event != "failed":
                store.audit(self.db, verdict.event, named, account_id, address, "anonymous")
            self.db.finish(commit=True)
            if verdict.lock:
                raise TooManyAttempts("too many failed attempts: try again in 15 minute(s)",
                                      {"username": ["sign-in is locked for now"]}, retry_after=verdict.retry_after)
            raise Unauthorized(SIGN_IN_FAILED, {"password": [SIGN_IN_FAILED]})
        if accounts.needs_rehash(account["password_hash"]):
            self.db.execute(store.REHASH, (hashed(accounts.hash_password, body["password"]), account_id))
        # A cookie the browser brought from before (another person's, or one planted) ends here.
        presented = request.cookies.get(accounts.COOKIE)
        if presented and len(presented) <= 200:
            self.db.execute(store.END_SESSION, (accounts.session_hash(presented),))
        self.db.execute(store.SIGNED_IN, (account_id,))
        value, digest, csrf = self._new_session(request, account_id, address)
        store.audit(self.db, "signed_in", username, account_id, address, f"account:{username}")
        session = self.db.one(store.SESSION, (digest,))
        response = reply(BY_NAME["sign_in"], self._session_body(session, csrf, session["expires_at"]))
        return self._set_cookie(response, request, value, int(accounts.ABSOLUTE.total_seconds()))

    @api("GET", "/api/v1/session")
    def current_session(self, request):
        row = self._live_session(request, check_csrf=False)
        if row is None:
            self.db.finish(commit=True)
            raise Unauthorized("nobody is signed in", {accounts.COOKIE: ["no live session"]})
        return reply(BY_NAME["current_session"], self._session_body(row, row["csrf_token"], row["expires_at"]))

    @api("DELETE", "/api/v1/session")
    def sign_out(self, request):
        row = self._live_session(request, check_csrf=True)
        if row is not None:
            self.db.execute(store.END_SESSION, (row["session_hash"],))
            store.audit(self.db, "signed_out", row["username"], row["account_id"], self._address(request),
                        f"account:{row['username']}")
        response = Response(status=204)
        response.delete_cookie(accounts.COOKIE, path="/", httponly=True, samesite="Strict")
        return response

    @api("POST", "/api/v1/session/password")
    def change_password(self, request):
        row = self._live_session(request, check_csrf=True)
        if row is None:
            self.db.finish(commit=True)
            raise Unauthorized("your session has ended; sign in again", {accounts.COOKIE: ["no live session"]})
        body = load(s.PasswordChangeSchema, json_body(request))
        account = self.db.one(store.ACCOUNT_BY_ID, (row["account_id"],))
        address = self._address(request)
        self.db.finish(commit=True)   # no connection held while hashing
        if not hashed(accounts.verify_password, account["password_hash"], body["current_password"]):
            # Counted as a failed sign-in: a session left open must not become a way to guess the password.
            failures = self.db.one(store.FAILED, (account["account_id"],))["failed_attempts"]
            store.audit(self.db, "failed", account["username"], account["account_id"], address,
                        f"account:{account['username']}")
            if failures >= accounts.MAX_FAILURES:
                self.db.execute(store.LOCK, (accounts.LOCK_FOR, account["account_id"]))
                self.db.execute(store.END_SESSIONS_OF, (account["account_id"], None))
                store.audit(self.db, "locked", account["username"], account["account_id"], address, "system")
                self.db.finish(commit=True)
                raise TooManyAttempts("too many failed attempts: signed out and locked for now",
                                      {"current_password": ["wrong too many times"]},
                                      retry_after=int(accounts.LOCK_FOR.total_seconds()))
            self.db.finish(commit=True)
            raise ValidationFailed("the current password is wrong", {"current_password": ["is wrong"]})
        problems = accounts.password_problems(body["new_password"], account["username"])
        if body["new_password"] == body["current_password"]:
            problems.append("must differ from the current password")
        if problems:
            raise ValidationFailed("the new password will not do", {"new_password": problems})
        digest = hashed(accounts.hash_password, body["new_password"])
        self.db.execute(store.SET_PASSWORD, (digest, False, account["account_id"]))
        # Every session of the account ends, this one too: it carries on under a new cookie.
        self.db.execute(store.END_SESSIONS_OF, (account["account_id"], None))
        value, _, _ = self._new_session(request, account["account_id"], address)
        store.audit(self.db, "password_changed", account["username"], account["account_id"], address,
                    f"account:{account['username']}")
        return self._set_cookie(Response(status=204), request, value, int(accounts.ABSOLUTE.total_seconds()))

    # -- accounts, for street admins and operators ---------------------------------------------------------

    def _account_in_scope(self, principal, account_id, what):
        """The account, locked for the change, if the admin's scope reaches it (else 404, as for no account),
        it is not the admin's own (409: `what` is for someone else to do) and its role is one the console
        manages (else 403: admins are made and kept from the command line)."""
        row = self.db.one(store.ACCOUNT_BY_ID_FOR_UPDATE, (account_id,))
        if row is None or not row["node_prefix"].startswith(principal.node_prefix):
            raise NotFound(f"no account {account_id}", {"account_id": ["no such account in your scope"]})
        if principal.kind == "account" and principal.token_id == row["username"]:
            raise Conflict(f"you cannot {what} your own account", {"account_id": [f"ask another admin to {what} it"]})
        if row["role"] not in accounts.MANAGED_ROLES:
            raise Forbidden(f"a {row['role']}'s account is kept with `linli account`, not in the console",
                            {"role": [f"{row['role']} accounts are managed from the command line"]})
        return row

    def _leader_of(self, principal, organization_id, node_prefix):
        """An organisation leader's account names a live organisation inside its scope, on this register
        (asked of the registry, as `linli account create` checks it): else a 422 on organization_id."""
        try:
            org = self._call("get_organization", organization_id, self._caller(principal))
        except NotFound:
            org = None
        if org is None:
            raise ValidationFailed("the account cannot be created",
                                   {"organization_id": [f"no organisation {organization_id} in your scope"]})
        if org.get("status") == "dissolved":
            raise ValidationFailed("the account cannot be created",
                                   {"organization_id": [f"organisation {organization_id} is dissolved"]})
        if not str(org.get("community_code", "")).startswith(node_prefix):
            raise ValidationFailed("the account cannot be created",
                                   {"node_prefix": [f"organisation {organization_id} is of community "
                                                    f"{org.get('community_code')}, outside {node_prefix}"]})

    @api("GET", "/api/v1/accounts")
    def list_accounts(self, request):
        principal = self._principal(request, "accounts:admin")
        rows = self.db.all(store.ACCOUNTS_UNDER, (principal.node_prefix,))
        return reply(BY_NAME["list_accounts"], [account_view(r) for r in rows])

    @api("POST", "/api/v1/accounts")
    def create_account(self, request):
        principal = self._principal(request, "accounts:admin")
        body = load(s.AccountCreateSchema, json_body(request))
        node_prefix = body.get("node_prefix") or principal.node_prefix
        accounts.check_new_account(body["username"], body["display_name"], body["role"], node_prefix,
                                   body.get("organization_id"), body.get("password"), principal.node_prefix)
        if body.get("organization_id") is not None:
            self._leader_of(principal, body["organization_id"], node_prefix)
        password = body.get("password") or accounts.new_password()
        digest = hashed(accounts.hash_password, password)
        row = self.db.one(store.INSERT_ACCOUNT, (body["username"], body["display_name"], digest, body["role"],
                                                 node_prefix, body.get("organization_id"), True, principal.actor))
        if row is None:
            raise Conflict(f"the user name {body['username']} is taken", {"username": ["already taken"]})
        store.audit(self.db, "created", row["username"], row["account_id"], self._address(request), principal.actor)
        created = account_view(row)
        if "password" not in body:
            created["password"] = password
        return reply(BY_NAME["create_account"], created)

    @api("POST", "/api/v1/accounts/<int:account_id>/disable")
    def disable_account(self, request, account_id):
        principal = self._principal(request, "accounts:admin")
        row = self._account_in_scope(principal, account_id, "disable")
        if self.db.execute(store.DISABLE, (account_id,)).rowcount:
            self.db.execute(store.END_SESSIONS_OF, (account_id, None))
            store.audit(self.db, "disabled", row["username"], account_id, self._address(request), principal.actor)
        return reply(BY_NAME["disable_account"], account_view(self.db.one(store.ACCOUNT_BY_ID, (account_id,))))

    @api("POST", "/api/v1/accounts/<int:account_id>/enable")
    def enable_account(self, request, account_id):
        principal = self._principal(request, "accounts:admin")
        row = self._account_in_scope(principal, account_id, "enable")
        if self.db.execute(store.ENABLE, (account_id,)).rowcount:
            store.audit(self.db, "enabled", row["username"], account_id, self._address(request), principal.actor)
        elif row["locked_until"] is not None:
            self.db.execute(store.SET_LOCK_LIFTED, (account_id,))
            store.audit(self.db, "enabled", row["username"], account_id, self._address(request), principal.actor)
        return reply(BY_NAME["enable_account"], account_view(self.db.one(store.ACCOUNT_BY_ID, (account_id,))))

    @api("POST", "/api/v1/accounts/<int:account_id>/password")
    def reset_password(self, request, account_id):
        principal = self._principal(request, "accounts:admin")
        body = load(s.PasswordResetSchema, json_body(request))
        row = self._account_in_scope(principal, account_id, "reset the password of")
        password = body.get("password") or accounts.new_password()
        problems = accounts.password_problems(password, row["username"])
        if problems:
            raise ValidationFailed("the password will not do", {"password": problems})
        self.db.execute(store.SET_PASSWORD, (hashed(accounts.hash_password, password), True, account_id))
        self.db.execute(store.END_SESSIONS_OF, (account_id, None))
        store.audit(self.db, "password_reset", row["username"], account_id, self._address(request), principal.actor)
        result = {"account": account_view(self.db.one(store.ACCOUNT_BY_ID, (account_id,)))}
        if "password" not in body:
            result["password"] = password
        return reply(BY_NAME["reset_password"], result)

    @api("GET", "/api/v1/accounts/events")
    def sign_in_events(self, request):
        principal = self._principal(request, "accounts:admin")
        query = load(s.SignInEventQuerySchema, request.args.to_dict())
        rows = self.db.all(store.EVENTS_UNDER, {
            "prefix": principal.node_prefix, "all": self.config["NODE_CODE"].startswith(principal.node_prefix),
            "account": query.get("account_id"), "after": query.get("after"), "limit": query["limit"] + 1})
        more = len(rows) > query["limit"]
        rows = rows[:query["limit"]]
        items = [{"id": r["event_id"], **{k: r[k] for k in ("at", "event", "username", "account_id", "address", "actor")}}
                 for r in rows]
        return reply(BY_NAME["sign_in_events"], {"items": items, "next": rows[-1]["event_id"] if more else None})
