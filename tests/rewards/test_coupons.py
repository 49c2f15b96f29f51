"""coupon_code rewards: uploaded pools, one code per grant, never two grants per code, even racing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from campaigns.models import CouponCode, Grant, GrantStatus
from rewards.coupons import CouponCodeAdapter
from tests.support.factories import flash_sale_definition
from tests.web.test_bad_input import error_of

ADMIN = "/admin/api/v1"


def _upload(client, token: str, pool: str, text: str, content_type: str = "text/csv"):
    return client.post(f"{ADMIN}/coupon-pools/{pool}/codes", data=text.encode(),
                       headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})


def _sale(pool: str, stock: int) -> dict:
    return flash_sale_definition(stock=stock, skus=[{
        "sku": "CPN", "name": "Coffee coupon", "price_fen": 0, "stock": stock,
        "reward": {"type": "coupon_code", "pool": pool, "title": "Coffee", "cost_fen": 300},
    }])


def test_uploaded_codes_each_go_to_exactly_one_grant(client, admin_token, factory, settle, db_session):
    token = admin_token("marketer")
    first = _upload(client, token, "coffee", "code\nA-1\nA-2\nA-3\n")
    assert first.status_code == 200, first.json
    assert first.json == {"pool": "coffee", "total": 3, "assigned": 0, "available": 3, "added": 3, "duplicates": 0}
    again = _upload(client, token, "coffee", "A-3\nA-4\n").json
    assert (again["added"], again["duplicates"], again["total"]) == (1, 1, 4)

    campaign = factory.campaign(_sale("coffee", stock=10))
    for i in range(4):
        factory.play(campaign, f"c{i}", "buy", {"sku": "CPN", "quantity": 1})
    settle()
    db_session.rollback()
    grants = db_session.scalars(select(Grant).where(Grant.campaign_id == campaign)).all()
    codes = sorted(g.external_id for g in grants)
    assert codes == ["coupon:A-1", "coupon:A-2", "coupon:A-3", "coupon:A-4"]
    assert all(g.status == GrantStatus.ISSUED for g in grants)
    listed = client.get(f"{ADMIN}/coupon-pools", headers={"Authorization": f"Bearer {token}"}).json
    assert listed == [{"pool": "coffee", "total": 4, "assigned": 4, "available": 0}]


def test_an_empty_pool_keeps_the_grant_waiting_until_codes_arrive(client, admin_token, factory, settle, db_session,
                                                                  container):
    campaign = factory.campaign(_sale("empty", stock=5))
    outcome = factory.play(campaign, "waiting", "buy", {"sku": "CPN", "quantity": 1}).outcome
    settle()
    db_session.rollback()
    grant = db_session.scalar(select(Grant).where(Grant.claim_id == outcome["claim_id"]))
    assert grant.status == GrantStatus.DEAD and "is empty" in grant.last_error  # retries used up, visible
    assert _upload(client, admin_token("marketer"), "empty", "E-1\n").status_code == 200
    with container.session_factory() as session:
        container.grant_service(session).retry(grant.id, actor="test")
    settle()
    db_session.rollback()
    assert db_session.get(Grant, grant.id).external_id == "coupon:E-1"


def test_racing_issues_never_hand_one_code_to_two_grants(client, admin_token, container, db_session):
    _upload(client, admin_token("marketer"), "race", "\n".join(f"R-{i}" for i in range(30)))
    # The adapter reads only a grant's id and reward: 40 grants, each issued twice at once by 8 threads.
    grants = [Grant(id=f"Grace{i:02d}", reward={"type": "coupon_code", "pool": "race"}) for i in range(40)]
    adapter = CouponCodeAdapter(container.adapter_context)

    def issue(i: int) -> str:
        grant = grants[i % 40]
        try:
            return adapter.issue(grant)
        except Exception as exc:  # noqa: BLE001 - the empty pool is counted below
            return type(exc).__name__

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(issue, range(80)))  # every grant twice, racing
    handed = {r for r in results if r.startswith("coupon:")}
    assert len(handed) == 30
    db_session.rollback()
    rows = db_session.scalars(select(CouponCode).where(CouponCode.pool == "race")).all()
    assert len({r.grant_id for r in rows if r.grant_id}) == 30 == sum(1 for r in rows if r.grant_id)
    assert results.count("RetryableIssueError") >= 20  # 10 grants found the pool empty, twice each


@pytest.mark.parametrize(("pool", "text", "content_type", "status", "code"), [
    ("ok", "A-1\n", "application/json", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("bad pool!", "A-1\n", "text/csv", 422, "VALIDATION_ERROR"),
    ("ok", "has space\n", "text/csv", 422, "VALIDATION_ERROR"),
    ("ok", "x" * 129 + "\n", "text/csv", 422, "VALIDATION_ERROR"),
    ("ok", "A\x00B\n", "text/csv", 422, "VALIDATION_ERROR"),  # the csv module refuses NUL: a 422, not a 500
])
def test_a_bad_upload_is_refused_whole(client, admin_token, db_session, pool, text, content_type, status, code):
    error_of(_upload(client, admin_token("marketer"), pool, f"GOOD-1\n{text}", content_type), status, code)
    assert db_session.scalars(select(CouponCode)).all() == []


def test_an_upload_with_only_a_header_has_no_codes(client, admin_token):
    error_of(_upload(client, admin_token("marketer"), "ok", "code\n"), 422, "VALIDATION_ERROR")


def test_any_line_ending_separates_codes(client, admin_token):
    answer = _upload(client, admin_token("marketer"), "eol", "A-1\rA-2\r\nA-3\n").json
    assert (answer["added"], answer["total"]) == (3, 3)
