"""The audit log from the API and the page: filtered by subject and by who, paged by the last id seen; bad
filters are refused."""

from __future__ import annotations

import re

from tests.pages.test_sessions import sign_in
from tests.support.factories import flash_sale_definition
from tests.web.test_bad_input import error_of


def test_entries_are_filtered_by_who_and_paged_newest_first(client, admin_token):
    ana = {"Authorization": f"Bearer {admin_token('marketer')}"}
    created = [client.post("/admin/api/v1/campaigns", json=flash_sale_definition(), headers=ana).json["id"]
               for _ in range(5)]
    viewer = {"Authorization": f"Bearer {admin_token('viewer')}"}
    by_marketer = client.get("/admin/api/v1/audit?actor=test%20marketer&subject_type=campaign", headers=viewer).json
    assert [int(e["subject_id"]) for e in by_marketer] == created[::-1]
    first = client.get("/admin/api/v1/audit?subject_type=campaign&limit=2", headers=viewer).json
    rest = client.get(f"/admin/api/v1/audit?subject_type=campaign&before_id={first[-1]['id']}", headers=viewer).json
    assert [e["subject_id"] for e in first + rest] == [str(i) for i in created[::-1]]
    assert client.get("/admin/api/v1/audit?actor=nobody", headers=viewer).json == []
    for bad in ("before_id=0", "before_id=x", "actor=" + "a" * 101, "limit=500"):
        error_of(client.get(f"/admin/api/v1/audit?{bad}", headers=viewer), 422, "VALIDATION_ERROR")


def test_the_audit_page_filters_by_who_and_links_to_older_entries(client, admin_token, user):
    marketer = {"Authorization": f"Bearer {admin_token('marketer')}"}
    for _ in range(101):
        client.post("/admin/api/v1/campaigns", json=flash_sale_definition(), headers=marketer)
    sign_in(client, user("viewer"))
    page = client.get("/admin/audit?subject_type=campaign").get_data(as_text=True)
    assert page.count("campaign.create") == 100 and 'data-testid="older"' in page
    link = re.search(r'href="([^"]+)" data-testid="older"', page).group(1).replace("&amp;", "&")
    assert "subject_type=campaign" in link  # the filter stays on the next page
    older = client.get(link).get_data(as_text=True)
    assert older.count("campaign.create") == 1 and 'data-testid="older"' not in older
    assert client.get("/admin/audit?actor=nobody").get_data(as_text=True).count("campaign.create") == 0
    assert client.get("/admin/audit?before_id=-5").status_code == 200  # ignored, not a 500
