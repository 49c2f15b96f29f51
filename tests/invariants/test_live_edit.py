"""Invariant 6: a published version is immutable; editing a live campaign mid-race never resets stock."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from campaigns.models import CampaignVersion, ClaimRecord

from ..support.factories import flash_sale_definition
from ..support.racers import distinct_buyers, race, tally


def test_a_live_campaign_edited_mid_race_records_each_plays_version_and_never_resets_stock(
        settings, factory, container, settle, db_session):
    definition = flash_sale_definition(stock=150)
    campaign_id = factory.campaign(definition)
    published = []

    def edit_while_racing() -> None:
        for stock in (200, 250, 300):
            definition["config"]["skus"][0]["stock"] = stock
            definition["name"] = f"Edited to {stock}"
            with container.session_factory() as session:
                service = container.campaign_service(session)
                service.update(campaign_id, definition, actor="editor")
                published.append(service.publish(campaign_id, actor="editor").version)

    editor = threading.Thread(target=edit_while_racing)
    editor.start()
    outcomes = race(settings, campaign_id, distinct_buyers(600), processes=4, threads=6)
    editor.join()

    sold = tally(outcomes)["OK"]
    stats = container.live_state.stats(campaign_id)
    assert published == [2, 3, 4]
    assert stats.version == 4 and stats.stock["sku:C50"]["total"] == 300
    assert stats.stock["sku:C50"]["taken"] == sold <= 300
    settle(worker=False)
    versions_seen = db_session.execute(select(ClaimRecord.version, func.count()).group_by(ClaimRecord.version)).all()
    assert sum(count for _version, count in versions_seen) == sold
    assert {version for version, _count in versions_seen} <= {1, 2, 3, 4}


def test_lowering_the_stock_below_what_was_sold_keeps_the_sales_and_sells_no_more(factory, container):
    definition = flash_sale_definition(stock=10)
    campaign_id = factory.campaign(definition)
    for i in range(6):
        factory.play(campaign_id, f"b{i}")
    definition["config"]["skus"][0]["stock"] = 4
    with container.session_factory() as session:
        service = container.campaign_service(session)
        service.update(campaign_id, definition, actor="t")
        service.publish(campaign_id, actor="t")
    assert container.live_state.stats(campaign_id).stock["sku:C50"] == {"total": 4, "taken": 6, "left": 0}


def test_published_versions_are_never_rewritten(factory, container, db_session):
    definition = flash_sale_definition(stock=10)
    campaign_id = factory.campaign(definition)
    first = db_session.scalar(select(CampaignVersion).where(CampaignVersion.campaign_id == campaign_id))
    snapshot = (first.definition, first.content_hash)
    definition["config"]["skus"][0]["stock"] = 99
    with container.session_factory() as session:
        service = container.campaign_service(session)
        service.update(campaign_id, definition, actor="t")
        assert service.publish(campaign_id, actor="t").version == 2
        assert service.publish(campaign_id, actor="t").version == 2  # same content, same version
    db_session.rollback()
    rows = db_session.scalars(select(CampaignVersion).where(CampaignVersion.campaign_id == campaign_id)
                              .order_by(CampaignVersion.version)).all()
    assert [r.version for r in rows] == [1, 2]
    assert (rows[0].definition, rows[0].content_hash) == snapshot
