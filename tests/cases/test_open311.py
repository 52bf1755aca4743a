"""Open311 GeoReport v2 service discovery: the categories as services, public, JSON only."""

from __future__ import annotations

from typing import Any

from django.test import Client

from gridgov.cases.models import Category

BASE = "/api/open311/v2"


def test_anyone_lists_the_active_minor_categories_as_services(
    standard_categories: Any, django_assert_max_num_queries: Any
) -> None:
    Category.objects.filter(scheme="legacy", code="0116").update(is_active=False)
    with django_assert_max_num_queries(3):
        response = Client().get(f"{BASE}/services.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    services = {s["service_code"]: s for s in response.json()}
    minors = Category.objects.filter(parent__isnull=False, is_active=True).count()
    assert len(services) == minors
    assert "legacy:01" not in services  # majors group services, they are not services
    assert "legacy:0116" not in services  # retired
    cover = services["legacy:0102"]
    assert cover == {
        "service_code": "legacy:0102",
        "service_name": "污水井盖",
        "description": cover["description"],
        "metadata": True,
        "type": "realtime",
        "keywords": cover["keywords"],
        "group": "公用设施",
    }
    assert "0102" in cover["description"]
    assert "Sewage manhole cover" in cover["keywords"]
    assert services["legacy:E0102"]["group"] == "市容环境"
    assert services["legacy:E0102"]["service_name"] == "暴露垃圾"
    assert services["legacy:0301"]["metadata"] is False  # a public toilet asks nothing more


def test_names_follow_the_requested_language(standard_categories: Any) -> None:
    response = Client(HTTP_ACCEPT_LANGUAGE="en").get(f"{BASE}/services.json")
    services = {s["service_code"]: s for s in response.json()}
    assert services["social:S0101"]["service_name"] == "Neighbour dispute"
    assert services["social:S0101"]["group"] == "Disputes"


def test_a_service_definition_gives_the_attributes_in_open311_shape(
    standard_categories: Any,
) -> None:
    response = Client().get(f"{BASE}/services/social:S0101.json")
    assert response.status_code == 200
    definition = response.json()
    assert definition["service_code"] == "social:S0101"
    attributes = {a["code"]: a for a in definition["attributes"]}
    assert [a["order"] for a in definition["attributes"]] == [1, 2, 3]
    parties = attributes["parties"]
    assert parties == {
        "variable": True,
        "code": "parties",
        "datatype": "number",
        "required": True,
        "datatype_description": parties["datatype_description"],
        "order": 1,
        "description": "涉及几方当事人？",
        "values": [],
    }
    issues = attributes["issues"]
    assert issues["datatype"] == "multivaluelist"
    assert {"key": "noise", "name": "噪声"} in issues["values"]


def test_a_bare_code_is_accepted_when_it_names_one_service(standard_categories: Any) -> None:
    response = Client().get(f"{BASE}/services/01002.json")
    assert response.json()["service_code"] == "gbt47678:01002"


def test_an_unknown_service_answers_404_in_the_open311_error_shape(
    standard_categories: Any,
) -> None:
    response = Client().get(f"{BASE}/services/legacy:9999.json")
    assert response.status_code == 404
    [error] = response.json()
    assert error["code"] == 404 and "legacy:9999" in error["description"]
    # a major is a group, not a service
    assert Client().get(f"{BASE}/services/legacy:01.json").status_code == 404


def test_xml_is_not_offered(db: None) -> None:
    for path in ("/services.xml", "/services/legacy:0102.xml"):
        response = Client().get(BASE + path)
        assert response.status_code == 400
        [error] = response.json()
        assert error["code"] == 400 and ".json" in error["description"]


def test_the_discovery_document_names_the_endpoint(standard_categories: Any) -> None:
    response = Client().get(f"{BASE}/discovery.json")
    assert response.status_code == 200
    [endpoint] = response.json()["endpoints"]
    assert endpoint["url"] == "http://testserver/api/open311/v2"
    assert endpoint["formats"] == ["application/json"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"


def test_discovery_is_read_only(db: None) -> None:
    assert Client().post(f"{BASE}/services.json").status_code == 405
