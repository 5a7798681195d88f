"""CreateSendIdOperator: create a Braze send ID and hand it to downstream tasks."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_braze.hooks.braze import BrazeHook
from airflow_provider_braze.validation import validate_campaign_id, validate_send_id

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class CreateSendIdOperator(BaseOperator):
    """Create a Braze send identifier for a campaign (``POST /sends/id/create``).

    The send ID Braze answers with is the task's return value (so ``op.output`` works) and is
    also pushed to XCom under the key ``send_id``; the campaign ID is pushed under
    ``campaign_id``. Downstream tasks send messages tagged with it and later fetch that send's
    analytics.

    Braze allows 100 custom send IDs per workspace per day; the task logs how many are left.
    When the quota is used up the task fails at once, saying when it resets.

    .. code-block:: python

        create_send_id = CreateSendIdOperator(
            task_id="create_send_id",
            campaign_id="{{ params.campaign_id }}",
            send_id="newsletter-{{ ds_nodash }}",
        )

    .. seealso::
        https://www.braze.com/docs/api/endpoints/messaging/send_messages/post_create_send_ids/

    :param campaign_id: The API identifier of the campaign. (templated)
    :param send_id: Optional. The send ID to create: ASCII, at most 64 characters. Braze
        generates one when omitted; giving one makes a retry after a timeout safe. (templated)
    :param braze_conn_id: The Braze connection to use.
    """

    template_fields: Sequence[str] = ("campaign_id", "send_id")
    ui_color = "#ffa45c"

    def __init__(
        self,
        *,
        campaign_id: str,
        send_id: str | None = None,
        braze_conn_id: str = BrazeHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.campaign_id = campaign_id
        self.send_id = send_id
        self.braze_conn_id = braze_conn_id

    @cached_property
    def hook(self) -> BrazeHook:
        return BrazeHook(braze_conn_id=self.braze_conn_id)

    def execute(self, context: Context) -> str:
        # Validate the rendered values before the connection is even read.
        campaign_id = validate_campaign_id(self.campaign_id)
        send_id = validate_send_id(self.send_id)

        created = self.hook.create_send_id(campaign_id, send_id)

        self.log.info("Created Braze send ID %r for campaign %r.", created, campaign_id)
        quota = self.hook.last_rate_limit
        if quota is not None:
            self.log.info("Daily send ID quota: %s.", quota.describe())
        ti = context["ti"]
        ti.xcom_push(key="send_id", value=created)
        ti.xcom_push(key="campaign_id", value=campaign_id)
        return created
