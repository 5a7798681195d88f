"""braze:// asset URIs: one URI per campaign and instance, anything else refused."""

from __future__ import annotations

import pytest

from airflow_provider_braze.assets import (
    braze_campaign_asset,
    campaign_asset_uri,
    campaign_of,
    instance_of,
)
from airflow_provider_braze.delivery.summary import SendSummary


@pytest.mark.parametrize(
    ("uri", "normalized"),
    [
        ("braze://US-03/campaigns/abc-123", "braze://us-03/campaigns/abc-123"),
        ("braze://us-03/campaigns/abc-123/", "braze://us-03/campaigns/abc-123"),
        ("braze://rest.iad-03.braze.com/campaigns/abc", "braze://us-03/campaigns/abc"),
        ("braze://rest.fra-02.braze.eu/campaigns/abc", "braze://eu-02/campaigns/abc"),
        ("braze://sandbox/campaigns/sandbox-api-campaign", "braze://sandbox/campaigns/sandbox-api-campaign"),
        ("braze://rest.new-99.braze.com/campaigns/abc", "braze://rest.new-99.braze.com/campaigns/abc"),
    ],
)
def test_one_uri_per_campaign(uri: str, normalized: str) -> None:
    from airflow.sdk import Asset

    assert Asset(uri).uri == normalized


@pytest.mark.parametrize(
    "uri",
    [
        "braze://us03/campaigns/x",  # a typo: no such instance
        "braze://us-99/campaigns/x",
        "braze://example.com/campaigns/x",
        "braze://localhost/campaigns/x",
        "braze://us-03:443/campaigns/x",
        "braze://us-03/segments/x",
        "braze://us-03/campaigns/x/sends/y",
        "braze://us-03/campaigns/",
        "braze://us-03/campaigns/x?y=1",
        "braze://us-03/campaigns/é",
        "braze://us-03/campaigns/%C3%A9",
    ],
)
def test_anything_else_is_refused(uri: str) -> None:
    from airflow.sdk import Asset

    with pytest.raises(ValueError, match="braze://"):
        Asset(uri)


@pytest.mark.parametrize("campaign", ["x#y", "x?y", "x/y", "é", "", "a b"])
def test_the_helper_refuses_what_a_uri_would_cut_or_encode(campaign: str) -> None:
    with pytest.raises(ValueError, match="campaign ID is 1 to 200 letters"):
        braze_campaign_asset(campaign, instance="US-03")


def test_the_helper_builds_the_normalized_asset() -> None:
    asset = braze_campaign_asset("abc-123", instance="rest.iad-03.braze.com")
    assert asset.uri == asset.name == "braze://us-03/campaigns/abc-123"
    assert campaign_asset_uri("abc-123", instance="US-03") == asset.uri
    assert campaign_of(asset.uri) == ("us-03", "abc-123")
    assert campaign_of("s3://bucket/key") is None


@pytest.mark.parametrize(
    ("base_url", "instance"),
    [
        ("https://rest.iad-03.braze.com", "us-03"),
        ("https://rest.fra-01.braze.eu", "eu-01"),
        ("http://127.0.0.1:8080", "sandbox"),
        ("http://localhost:1234", "sandbox"),
        ("https://rest.new-99.braze.com", "rest.new-99.braze.com"),
    ],
)
def test_a_connections_instance(base_url: str, instance: str) -> None:
    assert instance_of(base_url) == instance


def test_an_event_carries_the_summarys_identity_and_counts_only() -> None:
    summary = SendSummary(send_id="s", campaign_id="c", accepted=3, in_doubt_details=[{"big": "list"}])
    extra = summary.event_extra()
    assert extra["send_id"] == "s"
    assert extra["accepted"] == 3
    assert "in_doubt_details" not in extra
    assert set(extra) == {
        "endpoint",
        "campaign_id",
        "send_id",
        "broadcast",
        "complete",
        "dry_run",
        "recipients",
        "accepted",
        "in_doubt",
        "not_sent",
        "dispatch_count",
        "schedule_ids",
        "finished_at",
    }
