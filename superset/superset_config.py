"""Superset configuration of the billing project (read through SUPERSET_CONFIG_PATH).

`billing superset up` starts Superset with this file and the environment below; nothing secret is
written here:

- ``SUPERSET_SECRET_KEY``: ``BILLING_SUPERSET_SECRET_KEY``, else generated on first start and kept
  in ``<state>/superset/secret_key``; Superset refuses to start without it.
- ``SUPERSET_HOME``: folder of the SQLite metadata database (``<state>/superset``).
- ``BILLING_CLICKHOUSE_DATABASE`` / ``BILLING_CLICKHOUSE_MARTS_DATABASE``: the raw and marts
  databases, which dataset SQL names as ``{{ raw_database }}`` and ``{{ marts_database }}``.
"""

import os
from pathlib import Path

from clickhouse_connect import common as clickhouse_connect_settings

# Superset runs a dashboard's queries at once over pooled connections. clickhouse-connect would give
# each client an HTTP session, and ClickHouse refuses a session that two queries use at once
# (SESSION_IS_LOCKED, 373): its documentation advises no session ids for multi-threaded clients.
clickhouse_connect_settings.set_setting("autogenerate_session_id", False)

SECRET_KEY = os.environ.get("SUPERSET_SECRET_KEY") or ""
if not SECRET_KEY:
    raise RuntimeError("SUPERSET_SECRET_KEY is not set; start Superset with `billing superset up`.")

_HOME = Path(os.environ.get("SUPERSET_HOME") or Path.cwd())
SQLALCHEMY_DATABASE_URI = f"sqlite:///{_HOME / 'superset.db'}?check_same_thread=false"
DATA_DIR = str(_HOME)

FEATURE_FLAGS = {
    # Render every chart of a dashboard, not only the ones scrolled into view (screenshots, checks).
    "DASHBOARD_VIRTUALIZATION": False,
    "ALERT_REPORTS": False,
    "THUMBNAILS": False,
    # Dataset SQL names its databases through the two values below, so the same YAML serves any
    # configured database names.
    "ENABLE_TEMPLATE_PROCESSING": True,
}
JINJA_CONTEXT_ADDONS = {
    "raw_database": os.environ.get("BILLING_CLICKHOUSE_DATABASE") or "billing",
    "marts_database": os.environ.get("BILLING_CLICKHOUSE_MARTS_DATABASE") or "billing_marts",
}

# Dashboards read a near-real-time warehouse: no result cache, short metadata cache.
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 60}

ROW_LIMIT = 10000
SQLLAB_TIMEOUT = 60
SUPERSET_WEBSERVER_TIMEOUT = 120
SQLALCHEMY_TRACK_MODIFICATIONS = False

# The page may load nothing from elsewhere: Superset's prebuilt frontend embeds an outside analytics
# pixel on every page, and map tiles and web fonts come from outside too. A same-origin content
# security policy keeps the browser from contacting any of them. Loopback only: plain HTTP.
_SAME_ORIGIN = ["'self'"]
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": _SAME_ORIGIN,
        "default-src": _SAME_ORIGIN,
        "img-src": [*_SAME_ORIGIN, "blob:", "data:"],
        "worker-src": [*_SAME_ORIGIN, "blob:"],
        "connect-src": _SAME_ORIGIN,
        "object-src": "'none'",
        "style-src": [*_SAME_ORIGIN, "'unsafe-inline'"],
        "font-src": [*_SAME_ORIGIN, "data:"],
        "script-src": [*_SAME_ORIGIN, "'strict-dynamic'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,
    "session_cookie_secure": False,
}
SESSION_COOKIE_SAMESITE = "Lax"
WTF_CSRF_TIME_LIMIT = None
