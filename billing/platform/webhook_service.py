"""The webhook delivery service as a local service of `billing up | down | status`, when endpoints are configured."""

from __future__ import annotations

from billing.platform.group_service import GroupConsumerService


class WebhookService(GroupConsumerService):
    """`billing webhooks deliver` in the background for the endpoints of BILLING_WEBHOOK_ENDPOINTS_FILE; healthy once
    it is a member of the webhook delivery group. Part of the stack only when that file is set."""

    name = "webhooks"
    command = ("webhooks", "deliver")
    member = "webhooks-1"

    @property
    def consumer_group(self) -> str:
        return self.settings.webhook_group_id

    def details(self) -> str:
        return f"endpoints from {self.settings.webhook_endpoints_file}"
