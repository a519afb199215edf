"""The gateway's own HTTP operations (shared/api.py): staff sign-in, sessions and accounts.

Served by hand (custom=True) in services/gateway/sessions.py, since they set and read the session
cookie rather than asking a service. Every other operation can be called with that cookie too (and
the X-CSRF-Token header on a change) instead of a bearer token; the document says so once, in its
`session` security scheme.
"""
from services.gateway import schemas as s
from shared.api import Operation

TAG = "accounts"
OPS = "instance"
TAGS = {TAG: "Staff accounts, sign-in and sessions of the console (machines keep using bearer tokens)",
        OPS: "The instance's health for its operators: outboxes, migrations, queues, federation links, keys"}
ADMINS = "(street admins and operators, for accounts inside their own scope)"

OPERATIONS = [
    Operation("POST", "/api/v1/session", "gateway", "sign_in", None,
              "Sign in with a user name and password: sets the HttpOnly session cookie and answers with the "
              "CSRF token to send on changes. Five failures in a row lock the account for 15 minutes; many "
              "failures from one address are refused for a while (429 with Retry-After)", TAG,
              body=s.SignInSchema, reply=s.SessionSchema, custom=True, problems=(401, 422, 429)),
    Operation("GET", "/api/v1/session", "gateway", "current_session", None,
              "The signed-in account, its permissions and the CSRF token (401 when no live session)", TAG,
              reply=s.SessionSchema, custom=True, problems=(401,), extra={"security": [{"session": []}]}),
    Operation("DELETE", "/api/v1/session", "gateway", "sign_out", None,
              "Sign out: ends the session and clears its cookie", TAG, status=204, custom=True, problems=(403,),
              extra={"security": [{"session": []}]}),
    Operation("POST", "/api/v1/session/password", "gateway", "change_password", None,
              "Change one's own password (needed after a reset); other sessions of the account end", TAG,
              body=s.PasswordChangeSchema, status=204, custom=True, problems=(401, 403, 422, 429),
              extra={"security": [{"session": []}]}),
    Operation("GET", "/api/v1/accounts", "gateway", "list_accounts", "accounts:admin",
              f"Staff accounts whose scope lies inside the caller's {ADMINS}", TAG, reply=s.AccountSchema,
              many=True, custom=True, problems=()),
    Operation("POST", "/api/v1/accounts", "gateway", "create_account", "accounts:admin",
              f"Create a staff account (community worker, organisation leader or district analyst; street admins "
              f"and operators are made with `linli account create`) with a node scope inside the caller's "
              f"{ADMINS}; its first password must be changed at first sign-in", TAG, body=s.AccountCreateSchema,
              reply=s.AccountCreatedSchema, status=201, custom=True, problems=(409, 422),
              location="/api/v1/accounts/{id}"),
    Operation("POST", "/api/v1/accounts/<int:account_id>/disable", "gateway", "disable_account", "accounts:admin",
              f"Disable an account: it can no longer sign in and its sessions end {ADMINS}", TAG,
              reply=s.AccountSchema, custom=True, problems=(404, 409)),
    Operation("POST", "/api/v1/accounts/<int:account_id>/enable", "gateway", "enable_account", "accounts:admin",
              f"Enable a disabled account again, and lift a lock {ADMINS}", TAG, reply=s.AccountSchema, custom=True,
              problems=(404, 409)),
    Operation("POST", "/api/v1/accounts/<int:account_id>/password", "gateway", "reset_password", "accounts:admin",
              f"Reset an account's password (given, or generated and shown once); it must be changed at the next "
              f"sign-in, and the account's sessions end {ADMINS}", TAG, body=s.PasswordResetSchema,
              reply=s.PasswordResetResultSchema, custom=True, problems=(404, 409, 422)),
    Operation("GET", "/api/v1/accounts/events", "gateway", "sign_in_events", "accounts:admin",
              f"The sign-in audit, newest first: sign-ins, failures, locks, refusals, sign-outs, password "
              f"changes and account changes {ADMINS}", TAG, query=s.SignInEventQuerySchema,
              reply=s.SignInEventPageSchema, custom=True, problems=(422,)),
    Operation("GET", "/api/v1/tokens", "gateway", "list_tokens", "accounts:admin",
              f"API tokens whose scope lies inside the caller's, newest first (never the token itself) {ADMINS}", TAG,
              reply=s.TokenSchema, many=True, custom=True, problems=()),
    Operation("POST", "/api/v1/tokens/<string:token_id>/revoke", "gateway", "revoke_token", "accounts:admin",
              f"Revoke an API token at once; a street admin revokes the tokens of roles the console manages, an "
              f"operator any in scope {ADMINS}", TAG, path_schema=s.TokenPathSchema, reply=s.TokenSchema,
              custom=True, problems=(404, 409, 422)),
    Operation("GET", "/api/v1/instance", "gateway", "instance_state", "instance:read",
              "The instance's health: each service's outbox backlog, migrations applied and pending, dead-letter "
              "and unrouted queues, federation links to its children and parent, and signing-key fingerprints "
              "(street admins, operators)", OPS, reply=s.InstanceStateSchema, custom=True, problems=()),
]
