"""A local stand-in for Microsoft Entra ID (v2.0 endpoints) and Microsoft Graph.

For tests, and for trying the project out on a machine with no network. One
HTTPS server (standard library ``http.server`` in a daemon thread) answers both
the authority and Graph paths::

    with LocalEntra(cert_dir=tmp_path, users=[alice], tenant_id=TID, client_id=CID, client_secret="s") as entra:
        app = msal.ConfidentialClientApplication(
            CID, client_credential="s", authority=entra.authority(), instance_discovery=False,
            http_client=core.http.session(ca_bundle=str(entra.ca_path)),
        )

It follows Entra where the project could tell the difference, and says so where
it does not:

- Access tokens for Graph are v1 tokens (``ver`` "1.0"), as Entra issues them
  whatever endpoint was used; their ``iss`` is ``{url}/{tid}/`` where Entra's is
  ``https://sts.windows.net/{tid}/``. Tokens for ``api_audience`` are v2 unless
  ``api_token_version=1``.
- ``sub`` is pairwise (per user and audience), as Entra's is: it is not the oid.
- The discovery document of "organizations"/"common" carries the literal
  ``{tenantid}`` issuer template.
- Any user can sign in at any tenant's endpoints; Entra would sign in at a concrete
  tenant only its own users (``strict_tenants=True``), so a user of another tenant
  gets a token with their own ``tid`` only through "organizations" or "common".
- Refresh tokens stay valid after use (Entra does not rotate them out) until
  ``revoke_refresh_tokens``.
- PKCE (S256) is required on every authorization request; Entra only requires it
  of public clients. There is no browser session: ``prompt=none`` always answers
  ``login_required``.
- Graph's ``/me`` returns companyName and department without ``$select``; real
  Graph does not (``graph_strict_select=True`` gives Graph's behaviour).

Tests steer it through attributes (``jwks_down``, ``next_authorize_error``,
``id_token_hook``, ``unreachable``, ``clock_offset``, ``users`` keyed by oid), read
what it saw (``issued``, ``token_requests``, ``jwks_requests``, ``logout_requests``,
``graph_requests``, ``request_log``), forge tokens with
``sign``/``id_token``/``access_token``, and play the browser with ``sign_in``.
``reset()`` undoes all of it, rotated keys included: a server shared by a test
session resets before every test.

The server certificate comes from a CA kept in ``cert_dir`` (``ca.pem``, see
``devtools.tls``), so a development CA can be trusted once a year; its name
constraints keep it to localhost, 127.0.0.1 and ::1.

The modules: ``server`` (LocalEntra: state, reset, routing), ``oauth`` (discovery,
keys, authorize, logout), ``token_endpoint``, ``tokens`` (signing keys and
tokens), ``graph``, ``pages`` (HTML and the browser), ``users``.
"""

from devtools.local_entra.server import LocalEntra
from devtools.local_entra.users import LocalUser, solid_png

__all__ = ["LocalEntra", "LocalUser", "solid_png"]
