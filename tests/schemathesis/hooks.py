"""schemathesis hooks for scripts/schemathesis: real credentials for the secured operations.

Each operation names its security scheme in the description. `admin` operations get the admin
token the script made with `layer-idp admin-tokens create`. `session` operations get a real
session: a user signed up with POST /users and logged in with POST /sessions, through the API.

A fresh user is made every few seconds and after any 401. The generated requests send wrong
`current_password`s to PATCH and DELETE /users/me, and after a few of those the login throttle
rightly holds that account (429) for a while; a new account keeps the session operations
reachable. DELETE /sessions/current ends the session in use, and the 401 that follows makes a
new one.
"""

import itertools
import json
import os
import secrets
import urllib.request

import schemathesis

BASE_URL = os.environ["IDP_URL"]
ADMIN_TOKEN = os.environ["IDP_ADMIN_TOKEN"]
_users = itertools.count(1)


def _post(path, body):
    request = urllib.request.Request(
        BASE_URL + path,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _scheme(context):
    for requirement in context.operation.definition.raw.get("security") or []:
        for name in requirement:
            return name
    return "none"


@schemathesis.auth(refresh_interval=3, cache_by_key=lambda case, context: _scheme(context), retry_on=[401])
class LayerIdpAuth:
    def get(self, case, context):
        scheme = _scheme(context)
        if scheme == "admin":
            return ADMIN_TOKEN
        if scheme == "session":
            email = f"schemathesis-{os.getpid()}-{next(_users)}@example.com"
            password = secrets.token_urlsafe(18)
            _post("/users", {"email": email, "password": password})
            return _post("/sessions", {"email": email, "password": password})["session_token"]
        return ""

    def set(self, case, data, context):
        if data:
            case.headers = case.headers or {}
            case.headers["Authorization"] = f"Bearer {data}"
