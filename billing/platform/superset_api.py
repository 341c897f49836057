"""A small client of Superset's REST API: login, asset import/export, dashboards, SQL Lab."""

from __future__ import annotations

import json
from typing import Any

import httpx

from billing.core.errors import PlatformError, ServiceUnavailable


class SupersetClient:
    """Logged-in session (JWT + CSRF token + session cookie) against one Superset server."""

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 120.0):
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)
        try:
            response = self._http.post("/api/v1/security/login", json={
                "username": username, "password": password, "provider": "db", "refresh": False,
            })
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"cannot reach Superset at {self.base_url} ({exc}); run `billing superset up`.") from exc
        if response.status_code == 401:
            raise PlatformError(
                f"Superset rejected the login of {username!r}; check BILLING_SUPERSET_ADMIN_USER/_PASSWORD."
            )
        self._check(response, "login")
        self._http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        csrf = self._check(self._http.get("/api/v1/security/csrf_token/"), "csrf token")
        self._http.headers["X-CSRFToken"] = csrf.json()["result"]
        self._http.headers["Referer"] = self.base_url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SupersetClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _check(response: httpx.Response, what: str) -> httpx.Response:
        if response.status_code >= 400:
            raise PlatformError(f"Superset {what} failed with HTTP {response.status_code}: {response.text[:500]}")
        return response

    def get(self, path: str, **params: Any) -> Any:
        """JSON of ``GET path``."""
        return self._check(self._http.get(path, params=params or None), f"GET {path}").json()

    def post(self, path: str, payload: dict) -> httpx.Response:
        """``POST path`` with a JSON body (the response, whatever its status)."""
        return self._http.post(path, json=payload)

    def import_assets(self, bundle: bytes, passwords: dict[str, str]) -> None:
        """Import a zip of databases, datasets, charts and dashboards, overwriting what exists."""
        response = self._http.post(
            "/api/v1/assets/import/",
            files={"bundle": ("assets.zip", bundle, "application/zip")},
            data={"passwords": json.dumps(passwords)},
        )
        self._check(response, "asset import")

    def export_assets(self) -> bytes:
        """Zip of every database, dataset, chart, dashboard and saved query."""
        return self._check(self._http.get("/api/v1/assets/export/"), "asset export").content

    def dashboards(self) -> list[dict]:
        """Every dashboard (id, title, slug, url)."""
        query = "(columns:!(id,dashboard_title,slug,url),page_size:100)"
        return self.get("/api/v1/dashboard/", q=query)["result"]

    def dashboard_charts(self, dashboard: int | str) -> list[dict]:
        """Charts of one dashboard (id, slice_name, form_data)."""
        return self.get(f"/api/v1/dashboard/{dashboard}/charts")["result"]

    def native_filters(self, dashboard: int | str) -> list[dict]:
        """The native filter definitions of one dashboard."""
        metadata = json.loads(self.get(f"/api/v1/dashboard/{dashboard}")["result"]["json_metadata"] or "{}")
        return metadata.get("native_filter_configuration", [])

    def database_id(self, name: str) -> int:
        """Id of the database connection called ``name``."""
        query = f"(filters:!((col:database_name,opr:eq,value:'{name}')))"
        found = self.get("/api/v1/database/", q=query)["result"]
        if not found:
            raise PlatformError(f"Superset has no database called {name!r}; run `billing superset up`.")
        return found[0]["id"]
