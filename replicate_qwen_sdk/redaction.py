"""What of a URL may be shown, and which of its parts are secrets.

A URL can carry a credential in its userinfo (``http://user:password@host``,
or a token alone: ``https://TOKEN@host``) and in its query string. Every URL
that a message, a ``repr`` or a log line shows goes through
:func:`shown_url`; the credentials of a URL (:func:`url_secrets`) join the
secrets a transport masks in what a server or a library says.
"""

from __future__ import annotations

import base64
import re
from typing import Any, Tuple
from urllib.parse import unquote

__all__ = ["shown_name", "shown_url", "url_secrets", "without_userinfo"]

# The scheme and "//" (optional: some values come without), then the
# authority: everything up to the first "/", "?" or "#".
_AUTHORITY = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.\-]*:)?//)?([^/?#]*)")


def without_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` taken out of its authority, the
    rest as written: ``http://u:p@host:8/v1`` → ``http://host:8/v1``.

    A value without a scheme is read the same way (``u:p@host/x`` →
    ``host/x``); one without ``@`` before its path comes back unchanged.
    """
    match = _AUTHORITY.match(url)
    assert match is not None  # every group is optional
    prefix, authority = match.group(1) or "", match.group(2)
    if "@" not in authority:
        return url
    # Like urllib3 and urlsplit: the host follows the last "@" (a password
    # written with an unescaped "@" stays hidden whole).
    return prefix + authority.rpartition("@")[2] + url[match.end() :]


def shown_url(url: Any) -> str:
    """``url`` as a message may show it: scheme, host, port and path;
    userinfo, query string and fragment left out. Never raises: a value
    that is not a string is named by its type."""
    if not isinstance(url, str):
        return f"<{type(url).__name__}>"
    return re.split(r"[?#]", without_userinfo(url.strip()), maxsplit=1)[0]


def shown_name(model: str) -> str:
    """A model name as a message may show it: a name that is a URL (a
    Space's, as its own model name) is shown as :func:`shown_url` shows
    URLs; any other name as given."""
    return shown_url(model) if "://" in model else model


def url_secrets(url: Any) -> Tuple[str, ...]:
    """The credentials in ``url``'s userinfo, in every form a server or a
    library may repeat them: the password as written and percent-decoded,
    ``user:password``, and that pair as a ``Basic`` header carries it (base64).
    A user name is a secret only when it comes alone (``https://TOKEN@host``):
    beside a password it is an account name, and masking a common word such
    as ``user`` everywhere would garble messages.
    """
    if not isinstance(url, str):
        return ()
    match = _AUTHORITY.match(url.strip())
    authority = match.group(2) if match else ""
    if "@" not in authority:
        return ()
    userinfo = authority.rpartition("@")[0]
    user, has_password, password = userinfo.partition(":")
    if not has_password:
        return tuple({user: None, unquote(user): None}) if user else ()
    forms = [userinfo, password, unquote(password)]
    # requests sends the decoded pair, latin-1 encoded, as Basic auth.
    pair = f"{unquote(user)}:{unquote(password)}"
    try:
        forms.append(base64.b64encode(pair.encode("latin-1")).decode("ascii"))
    except UnicodeEncodeError:
        forms.append(base64.b64encode(pair.encode("utf-8")).decode("ascii"))
    return tuple({form: None for form in forms if form})
