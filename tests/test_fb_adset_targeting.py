"""Targeting: parsing and local rules (docs/adset_rules.md R9-R13, R15), placements, and the targeting ops over the sandbox."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fb_adset import (
    PlacementPlan,
    TargetingSpec,
    apply_placements,
    check_targeting,
    describe_targeting_locally,
    parse_targeting,
    recommend_placements,
    targeting_payload,
)
from fb_utils import ValidationError

AUTOMATION = {"targeting_automation": {"advantage_audience": 0}}
US = {"geo_locations": {"countries": ["US"]}}


def refused(raw, **check) -> ValidationError:
    """The one ValidationError that parse + check raise for ``raw`` (fails the test if none)."""
    with pytest.raises(ValidationError) as caught:
        check_targeting(parse_targeting(raw), **check)
    return caught.value


def accepted(raw, **check) -> TargetingSpec:
    spec = parse_targeting(raw)
    check_targeting(spec, **check)
    return spec


# ---------------------------------------------------------------------------------------------------------------
# R9: parse_targeting
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, blame, fragment",
    [
        (
            {"geo_locations": {"countries": ["US", "CA", "XX"]}},
            "targeting.geo_locations.countries[2]",
            "not an ISO 3166-1",
        ),
        ({"geo_locations": {"countries": ["Germany"]}}, "targeting.geo_locations.countries[0]", "'DE' for Germany"),
        ({"geo_locations": {"countries": ["UK"]}}, "targeting.geo_locations.countries[0]", "'GB'"),
        ({"geo_locations": {"countries": [7]}}, "targeting.geo_locations.countries[0]", "two-letter country code"),
        ({"age_min": 12}, "targeting.age_min", "from 13 to 65"),
        ({"age_max": 66}, "targeting.age_max", "from 13 to 65"),
        ({"age_min": "twenty"}, "targeting.age_min", "whole number"),
        ({"age_min": "25-45"}, "targeting.age_min", "range"),
        ({"age_min": 25.5}, "targeting.age_min", "whole number"),
        ({"age_min": True}, "targeting.age_min", "whole number"),
        ({"age_min": 40, "age_max": 30}, "targeting.age_max", "below age_min"),
        ({"genders": [3]}, "targeting.genders[0]", "1 (men) or 2 (women)"),
        ({"genders": [True]}, "targeting.genders[0]", "1 (men) or 2 (women)"),
        ({"interests": ["yoga"]}, "targeting.interests[0]", "is a name, not an id"),
        ({"locales": ["en_US"]}, "targeting.locales[0]", "numeric locale id"),
        ({"custom_audiences": [{"id": "abc"}]}, "targeting.custom_audiences[0].id", "numeric id"),
        ({"geo_locations": {"zips": ["94304"]}}, "targeting.geo_locations.zips[0].key", "US:94304"),
        (
            {"geo_locations": {"cities": [{"key": "2420379", "radius": 5}]}},
            "targeting.geo_locations.cities[0]",
            "10-50 miles",
        ),
        (
            {"geo_locations": {"cities": [{"key": "2420379", "radius": 90, "distance_unit": "km"}]}},
            "targeting.geo_locations.cities[0]",
            "17-80 kilometers",
        ),
        ({"geo_locations": {"location_types": ["office"]}}, "targeting.geo_locations.location_types[0]", "home"),
        ({"geo_locations": {"countrys": ["US"]}}, "targeting.geo_locations.countrys", "'countries'"),
        ({"foo": 1}, "targeting.foo", "unknown key"),
        ({"advantage_audience": 1}, "targeting.advantage_audience", "targeting_automation"),
        (
            {"targeting_automation": {"advantage_audience": 2}},
            "targeting.targeting_automation.advantage_audience",
            "0 or 1",
        ),
        ({"geo_locations": 5}, "targeting.geo_locations", "must be an object"),
        (
            {"flexible_spec": [{"interests": [{"id": "1"}], "hobbies": []}]},
            "targeting.flexible_spec[0].hobbies",
            "unknown key",
        ),
        ({"flexible_spec": [5]}, "targeting.flexible_spec[0]", "must be an object"),
        ({"geo_locations": {"countries": ["US"] * 30_000}}, "targeting.geo_locations.countries", "30,000 entries"),
        (
            {"geo_locations": {"zips": [{"key": f"US:{i:05d}"} for i in range(50_001)]}},
            "targeting.geo_locations.zips",
            "50,000",
        ),
        (
            {"brand_safety_content_filter_levels": ["x" * 1001]},
            "targeting.brand_safety_content_filter_levels[0]",
            "1,000",
        ),
        ({"age_min": float("nan")}, "targeting.age_min", "finite"),
        ({"keywords": {1: "x"}}, "targeting.keywords", "not text"),
        ({"keywords": {"a": object()}}, "targeting.keywords.a", "not JSON"),
    ],
)
def test_parse_refuses_with_r9_code_and_path(raw, blame, fragment):
    with pytest.raises(ValidationError) as caught:
        parse_targeting(raw)
    error = caught.value
    assert (error.code, error.error_subcode, error.blame_field) == (100, 1487079, blame), error.to_text()
    assert fragment in error.to_text()
    assert error.to_text().startswith("ERROR validation: ") and "Fix: " in error.to_text()
    assert "pydantic" not in error.to_text().lower() and "Input should" not in error.to_text()


@pytest.mark.parametrize(
    "raw, message",
    [
        ('{"geo_locations": ', "not valid JSON"),
        ("", "empty"),
        ("[1, 2]", "must be an object"),
        (None, "must be an object"),
        (42, "must be an object"),
        ("[" * 100_000, "nested too deeply"),
        ({"custom_locations": [{"a": [[[[[[[[[[[[[1]]]]]]]]]]]]]}]}, "nested too deeply"),
    ],
)
def test_malformed_input_is_one_clear_error(raw, message):
    with pytest.raises(ValidationError) as caught:
        parse_targeting(raw)
    assert message in caught.value.message and caught.value.error_subcode == 1487079
    assert caught.value.blame_field.startswith("targeting")


def test_every_problem_is_reported_with_the_first_ones_code():
    with pytest.raises(ValidationError) as caught:
        parse_targeting({"age_min": 10, "age_max": "abc", "genders": [3], "bogus": 1})
    problems = caught.value.data["problems"]
    assert {p["field"] for p in problems} == {
        "targeting.age_min",
        "targeting.age_max",
        "targeting.genders[0]",
        "targeting.bogus",
    }
    assert caught.value.blame_field == "targeting.age_min" and "3 more" in caught.value.message


def test_field_name_prefixes_the_path():
    with pytest.raises(ValidationError) as caught:
        parse_targeting({"age_min": 99}, field="adsets[1].targeting")
    assert caught.value.blame_field == "adsets[1].targeting.age_min"


def test_obvious_llm_shapes_are_coerced():
    spec = parse_targeting(
        {
            "countries": "us, gb",
            "age_min": "25",
            "age_max": "65+",
            "genders": "women",
            "locales": ["6", 24],
            "interests": [6003139266461, "6003020834693"],
            "custom_audiences": "123",
            "geo_locations": {"cities": [{"key": 2420379, "radius": "25", "distance_unit": "km"}]},
            "publisher_platforms": "Facebook, Instagram",
            "targeting_automation": {"advantage_audience": True},
        }
    )
    payload = targeting_payload(spec)
    assert payload["geo_locations"]["countries"] == ["US", "GB"]
    assert payload["geo_locations"]["cities"] == [{"key": "2420379", "radius": 25, "distance_unit": "kilometer"}]
    assert (payload["age_min"], payload["age_max"], payload["genders"], payload["locales"]) == (25, 65, [2], [6, 24])
    assert payload["interests"] == [{"id": "6003139266461"}, {"id": "6003020834693"}]
    assert payload["custom_audiences"] == [{"id": "123"}]
    assert payload["publisher_platforms"] == ["facebook", "instagram"]
    assert payload["targeting_automation"] == {"advantage_audience": 1}


def test_json_string_and_double_encoded_parts_are_accepted():
    raw = json.dumps(
        {
            "geo_locations": json.dumps({"countries": ["de"]}),
            "flexible_spec": json.dumps([{"interests": [{"id": "1", "name": "Yoga"}]}]),
            **AUTOMATION,
        }
    )
    payload = targeting_payload(accepted(raw))
    assert payload == {
        "geo_locations": {"countries": ["DE"]},
        "flexible_spec": [{"interests": [{"id": "1", "name": "Yoga"}]}],
        **AUTOMATION,
    }


def test_other_sdk_fields_are_kept_loosely_and_payload_has_no_none():
    raw = {
        **US,
        **AUTOMATION,
        "brand_safety_content_filter_levels": ["FACEBOOK_STANDARD"],
        "user_os": ["iOS"],
        "flexible_spec": [{"interests": [{"id": "1"}], "relationship_statuses": [1, 3]}],
        "effective_device_platforms": ["mobile"],
    }
    payload = targeting_payload(accepted(raw))
    assert payload["brand_safety_content_filter_levels"] == ["FACEBOOK_STANDARD"] and payload["user_os"] == ["iOS"]
    assert payload["flexible_spec"] == [{"interests": [{"id": "1"}], "relationship_statuses": [1, 3]}]
    assert "effective_device_platforms" not in payload
    assert "null" not in json.dumps(payload)


def test_facebook_read_back_shape_round_trips():
    read_back = {
        "geo_locations": {
            "countries": ["US"],
            "regions": [{"key": "3847", "name": "California", "country": "US"}],
            "cities": [
                {
                    "key": "2420379",
                    "name": "Palo Alto",
                    "region": "California",
                    "region_id": "3847",
                    "country": "US",
                    "radius": 12,
                    "distance_unit": "mile",
                }
            ],
            "location_types": ["home", "recent"],
        },
        "age_min": 18,
        "age_max": 65,
        "interests": [{"id": "6003139266461", "name": "Yoga"}],
        **AUTOMATION,
    }
    assert targeting_payload(accepted(read_back)) == read_back


def test_unicode_is_fine_where_text_belongs():
    spec = accepted({**US, **AUTOMATION, "interests": [{"id": "1", "name": "Café ☕ 東京"}]})
    assert "Café ☕ 東京" in describe_targeting_locally(spec)
    with pytest.raises(ValidationError) as caught:
        parse_targeting({"géo_locations": {"countries": ["US"]}})
    assert "géo_locations" in caught.value.message


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=15,
)
targeting_keys = st.sampled_from(
    [
        "geo_locations",
        "age_min",
        "age_max",
        "genders",
        "interests",
        "flexible_spec",
        "exclusions",
        "custom_audiences",
        "publisher_platforms",
        "facebook_positions",
        "targeting_automation",
        "locales",
        "countries",
        "cities",
        "device_platforms",
        "excluded_geo_locations",
        "nonsense",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.one_of(json_values, st.dictionaries(targeting_keys, json_values, max_size=6), st.text(max_size=40)))
def test_random_input_never_escapes_as_another_exception(raw):
    try:
        spec = parse_targeting(raw)
    except ValidationError as error:
        assert (error.code, error.error_subcode) == (100, 1487079)
        assert error.blame_field and error.blame_field.startswith("targeting")
        assert "Fix: " in error.to_text() and "\n" not in error.to_text()
        return
    payload = targeting_payload(spec)
    json.dumps(payload, allow_nan=False)
    assert parse_targeting(payload) == spec  # a payload parses back to the same spec
    try:
        check_targeting(spec, special_ad_categories=["HOUSING"])
    except ValidationError as error:
        assert error.code == 100 and error.error_subcode in (1885364, 1487079, 1870227, 1870189, 2490392)
    describe_targeting_locally(spec)


# ---------------------------------------------------------------------------------------------------------------
# R10-R13, R15: check_targeting
# ---------------------------------------------------------------------------------------------------------------


def test_r10_location_required_unless_custom_audience():
    error = refused({"age_min": 20, **AUTOMATION})
    assert (error.code, error.error_subcode, error.blame_field) == (100, 1885364, "targeting")
    assert "location" in error.message
    accepted({"custom_audiences": [{"id": "23850000000000001"}], **AUTOMATION})
    accepted({"flexible_spec": [{"custom_audiences": [{"id": "1"}]}], **AUTOMATION})
    for geo in (
        {"regions": [{"key": "3847"}]},
        {"cities": [{"key": "1"}]},
        {"zips": ["US:94304"]},
        {"custom_locations": [{"latitude": 1, "longitude": 2, "radius": 5}]},
        {"country_groups": ["europe"]},
    ):
        accepted({"geo_locations": geo, **AUTOMATION})
    error = refused({"geo_locations": {"location_types": ["home"]}, **AUTOMATION})
    assert error.error_subcode == 1885364


@pytest.mark.parametrize(
    "extra, fragment",
    [
        ({"age_min": 21}, "age_min must be 18"),
        ({"age_max": 50}, "age_max must be 65"),
        ({"genders": [2]}, "all genders"),
        ({"geo_locations": {"zips": ["US:94304"]}}, "zip code"),
        ({"geo_locations": {"cities": [{"key": "1", "radius": 10, "distance_unit": "mile"}]}}, "15 miles"),
        ({"geo_locations": {"cities": [{"key": "1", "radius": 20, "distance_unit": "kilometer"}]}}, "25 kilometers"),
        ({"excluded_custom_audiences": [{"id": "1"}]}, "excluded_custom_audiences"),
    ],
)
@pytest.mark.parametrize("category", ["HOUSING", "CREDIT", "EMPLOYMENT", "FINANCIAL_PRODUCTS_SERVICES"])
def test_r11_special_ad_categories(extra, fragment, category):
    raw = {**US, **AUTOMATION, **extra}
    error = refused(raw, special_ad_categories=[category])
    assert (error.code, error.error_subcode, error.blame_field) == (100, 1487079, "targeting")
    assert fragment in error.to_text() and category in error.message
    accepted(raw)  # the same spec is fine without the category
    accepted(raw, special_ad_categories=["NONE", "ISSUES_ELECTIONS_POLITICS"])


def test_r11_allows_the_allowed():
    accepted(
        {
            "geo_locations": {"countries": ["US"], "cities": [{"key": "1", "radius": 15, "distance_unit": "mile"}]},
            "age_min": 18,
            "age_max": 65,
            "genders": [1, 2],
            **AUTOMATION,
        },
        special_ad_categories=["housing"],
    )


@pytest.mark.parametrize(
    "restricted, words",
    [
        ({"age_min": 30}, "age"),
        ({"genders": [2]}, "gender"),
        ({"interests": [{"id": "6003107902433", "name": "Association football"}]}, "detailed targeting"),
        ({"flexible_spec": [{"interests": [{"id": "6003107902433"}]}]}, "detailed targeting"),
        ({"custom_audiences": [{"id": "23850000000000001"}]}, "custom audience"),
    ],
)
def test_r12_advantage_audience_required_only_for_a_restricted_setup_on_create(restricted, words):
    """v23.0+: default setups default to 1, restricted ones need an explicit 1 or 0 (only on create)."""
    error = refused({**US, **restricted})
    assert (error.code, error.error_subcode, error.blame_field) == (100, 1870227, "targeting")
    assert "advantage_audience" in error.message and words in error.message
    accepted({**US, **restricted}, creating=False)
    accepted({**US, **restricted, "targeting_automation": {"advantage_audience": 0}})


def test_r12_default_or_relaxed_setup_needs_no_flag():
    accepted(US)
    accepted({**US, "age_min": 18, "age_max": 65, "genders": [1, 2]})
    accepted({**US, "age_min": 30, "targeting_automation": {"individual_setting": {"age": 1}}})
    accepted({**US, "interests": [{"id": "6003107902433"}], "targeting_optimization": "expansion_all"})


@pytest.mark.parametrize(
    "ages, ok",
    [
        ({"age_max": 50}, False),
        ({"age_min": 30}, False),
        ({"age_min": 25, "age_max": 65}, True),
        ({}, True),
        ({"age_min": 18}, True),
    ],
)
def test_r13_advantage_audience_age_limits(ages, ok):
    raw = {**US, "targeting_automation": {"advantage_audience": 1}, **ages}
    if ok:
        accepted(raw)
    else:
        error = refused(raw)
        assert (error.code, error.error_subcode, error.blame_field) == (100, 1870189, "targeting")
    accepted({**US, **AUTOMATION, **ages})  # strict audiences keep any range


@pytest.mark.parametrize(
    "placements, fragment",
    [
        ({"facebook_positions": ["feed"]}, "publisher_platforms is not"),
        (
            {"publisher_platforms": ["facebook"], "instagram_positions": ["stream"]},
            "'instagram' is not in publisher_platforms",
        ),
        ({"publisher_platforms": ["facebook"], "facebook_positions": ["feeds"]}, "'feed'"),
        ({"publisher_platforms": ["instagram"], "instagram_positions": ["feed"]}, "not a position of Instagram"),
        ({"publisher_platforms": ["facebook", "tiktok"]}, "tiktok"),
        ({"publisher_platforms": ["facebook"], "whatsapp_positions": ["status"]}, "whatsapp"),
        ({"publisher_platforms": []}, "empty"),
        ({"device_platforms": ["tv"]}, "connected_tv, desktop, mobile"),
        # placements Meta removed: told, never sent
        (
            {"publisher_platforms": ["instagram"], "instagram_positions": ["stream", "explore"]},
            "Instagram Explore is no longer a placement",
        ),
        (
            {"publisher_platforms": ["facebook"], "facebook_positions": ["video_feeds"]},
            "video feeds is no longer a placement",
        ),
        (
            {"publisher_platforms": ["messenger"], "messenger_positions": ["story"]},
            "Messenger Stories is no longer a placement",
        ),
        # documented dependencies
        (
            {"publisher_platforms": ["threads"], "threads_positions": ["threads_stream"]},
            "Threads ads run only together with Instagram Feed",
        ),
        ({"publisher_platforms": ["instagram", "threads"], "instagram_positions": ["story"]}, "Instagram Feed"),
        (
            {"publisher_platforms": ["whatsapp"], "whatsapp_positions": ["status"]},
            "WhatsApp Status ads run only together with Instagram Stories",
        ),
        ({"publisher_platforms": ["instagram", "whatsapp"], "instagram_positions": ["stream"]}, "Instagram Stories"),
    ],
)
def test_r15_placements_consistent(placements, fragment):
    error = refused({**US, **AUTOMATION, **placements})
    assert (error.code, error.error_subcode, error.blame_field) == (100, 2490392, "targeting")
    assert fragment in error.to_text()


def test_r15_every_documented_position_is_accepted():
    from fb_adset import PLATFORM_POSITIONS, POSITION_FIELDS

    accepted(
        {
            **US,
            **AUTOMATION,
            "publisher_platforms": list(PLATFORM_POSITIONS),
            "device_platforms": ["mobile", "desktop"],
            **{POSITION_FIELDS[p]: list(positions) for p, positions in PLATFORM_POSITIONS.items()},
        }
    )


def test_check_reports_all_problems_in_rule_order():
    error = refused({"age_min": 30, "facebook_positions": ["feed"]}, special_ad_categories=["CREDIT"])
    rules = [p["rule"] for p in error.data["problems"]]
    assert rules == ["R10", "R11", "R12", "R15"] and error.error_subcode == 1885364
    assert "3 more" in error.message


# ---------------------------------------------------------------------------------------------------------------
# Placements
# ---------------------------------------------------------------------------------------------------------------


def test_video_goes_to_reels_stories_and_feed():
    plan = recommend_placements("video")
    assert plan.publisher_platforms == ["facebook", "instagram"]
    assert set(plan.positions["facebook"]) == {"feed", "story", "facebook_reels"}
    assert set(plan.positions["instagram"]) == {"stream", "story", "reels"}
    assert "Reels" in plan.summary() and "Stories" in plan.summary() and plan.reasons


def test_carousel_goes_to_feed_never_explore():
    plan = recommend_placements("carousel")
    assert plan.positions == {"facebook": ["feed"], "instagram": ["stream", "profile_feed"]}
    assert "Explore" not in plan.summary() and any("Carousel" in r for r in plan.reasons)


def test_placements_with_dependencies_accepted():
    accepted(
        {
            **US,
            **AUTOMATION,
            "publisher_platforms": ["instagram", "threads"],
            "instagram_positions": ["stream"],
            "threads_positions": ["threads_stream"],
        }
    )
    accepted(
        {
            **US,
            **AUTOMATION,
            "publisher_platforms": ["instagram", "whatsapp"],
            "instagram_positions": ["story"],
            "whatsapp_positions": ["status"],
        }
    )
    accepted(
        {**US, **AUTOMATION, "publisher_platforms": ["instagram", "threads", "whatsapp"]}
    )  # all Instagram positions


def test_image_goes_to_feed_and_stories():
    plan = recommend_placements("image")
    assert set(plan.positions["facebook"]) == {"feed", "story"} and set(plan.positions["instagram"]) == {
        "stream",
        "story",
    }


@pytest.mark.parametrize("objective", ["OUTCOME_AWARENESS", "reach"])
def test_awareness_is_broader(objective):
    for kind in ("image", "video", "carousel"):
        base, broad = recommend_placements(kind), recommend_placements(kind, objective)
        assert "audience_network" in broad.publisher_platforms
        assert sum(map(len, broad.positions.values())) > sum(map(len, base.positions.values()))
        assert any("Awareness" in r for r in broad.reasons)


@pytest.mark.parametrize("objective", ["OUTCOME_SALES", "OUTCOME_LEADS", "conversions"])
def test_conversions_put_feed_first(objective):
    for kind in ("image", "video", "carousel"):
        plan = recommend_placements(kind, objective)
        assert plan.positions["facebook"][0] == "feed" and plan.positions["instagram"][0] == "stream"
        assert "story" not in plan.positions["facebook"] and "audience_network" not in plan.publisher_platforms
        assert any("Feed first" in r for r in plan.reasons)


def test_app_promotion_is_mobile_only():
    plan = recommend_placements("video", "OUTCOME_APP_PROMOTION")
    assert plan.device_platforms == ["mobile"] and "rewarded_video" in plan.positions["audience_network"]


def test_automatic_and_no_instagram():
    auto = recommend_placements("video", automatic=True)
    assert auto.automatic and auto.publisher_platforms == [] and auto.positions == {} and "Advantage+" in auto.summary()
    no_ig = recommend_placements("image", instagram=False)
    assert "instagram" not in no_ig.publisher_platforms and "instagram" not in no_ig.positions
    assert any("Instagram left out" in r for r in no_ig.reasons)


def test_bad_creative_type_or_objective():
    with pytest.raises(ValidationError, match="creative type"):
        recommend_placements("hologram")
    with pytest.raises(ValidationError, match="objective"):
        recommend_placements("image", "WORLD_DOMINATION")


@pytest.mark.parametrize("kind", ["image", "video", "carousel"])
@pytest.mark.parametrize(
    "objective",
    [
        None,
        "OUTCOME_AWARENESS",
        "OUTCOME_TRAFFIC",
        "OUTCOME_ENGAGEMENT",
        "OUTCOME_LEADS",
        "OUTCOME_SALES",
        "OUTCOME_APP_PROMOTION",
    ],
)
@pytest.mark.parametrize("automatic, instagram", [(False, True), (False, False), (True, True)])
def test_recommended_plans_pass_the_rules(kind, objective, automatic, instagram):
    plan = recommend_placements(kind, objective, automatic=automatic, instagram=instagram)
    spec = apply_placements(
        parse_targeting({**US, **AUTOMATION, "publisher_platforms": ["messenger"], "messenger_positions": ["story"]}),
        plan,
    )
    check_targeting(spec)
    payload = targeting_payload(spec)
    assert "messenger_positions" not in payload
    from fb_adset import REMOVED_POSITIONS

    assert not [(p, x) for p, xs in plan.positions.items() for x in xs if (p, x) in REMOVED_POSITIONS]  # never explore
    assert payload.get("publisher_platforms") == (None if automatic else plan.publisher_platforms)
    assert parse_targeting(payload) == spec


def test_plan_summary_names_positions():
    plan = PlacementPlan(
        automatic=False,
        publisher_platforms=["facebook", "instagram"],
        positions={"facebook": ["feed"], "instagram": ["stream", "reels"]},
        device_platforms=["mobile"],
        reasons=[],
    )
    assert plan.summary() == "Manual placements: Facebook (Feed); Instagram (Feed, Reels); on mobile"


# ---------------------------------------------------------------------------------------------------------------
# Local description
# ---------------------------------------------------------------------------------------------------------------


def test_describe_locally():
    spec = parse_targeting(
        {
            "geo_locations": {
                "countries": ["US", "DE"],
                "cities": [{"key": "2420379", "name": "Palo Alto", "radius": 20}],
            },
            "excluded_geo_locations": {"regions": [{"key": "3847", "name": "California"}]},
            "age_min": 25,
            "age_max": 45,
            "genders": [2],
            "flexible_spec": [{"interests": [{"id": "1", "name": "Yoga"}, {"id": "2", "name": "Pilates"}]}],
            "custom_audiences": [{"id": "9", "name": "Buyers"}],
            "publisher_platforms": ["instagram"],
            "instagram_positions": ["reels"],
            "targeting_automation": {"advantage_audience": 0},
        }
    )
    text = describe_targeting_locally(spec)
    for fragment in (
        "United States",
        "Germany",
        "Palo Alto +20 mi",
        "except region California",
        "aged 25-45",
        "women",
        "Yoga, Pilates",
        "Buyers",
        "Instagram (Reels)",
        "Advantage+ audience off",
    ):
        assert fragment in text, (fragment, text)
    assert "\n" not in text
    assert "aged 18-65+, all genders" in describe_targeting_locally(parse_targeting(US))


# ---------------------------------------------------------------------------------------------------------------
# Ops end to end over the sandbox
# ---------------------------------------------------------------------------------------------------------------


async def test_search_interests_gives_ready_items(facebook):
    result = await facebook.call("search_interests", {"query": "yoga", "limit": 5})
    assert result.ok, result.text
    found = result.data["results"]
    assert found and all("yoga" in (i["name"] + " ".join(i.get("path") or [])).lower() for i in found)
    first = found[0]
    assert f"{int(first['audience_size_lower_bound']):,}" in result.text and first["id"] in result.text
    assert result.data["items"][0] == {"id": first["id"], "name": first["name"]}
    assert result.data["targeting"]["flexible_spec"][0]["interests"] == result.data["items"]
    nothing = await facebook.call("search_interests", {"query": "zzqxqzzqxq"})
    assert nothing.ok and "No interests match" in nothing.text and nothing.data["items"] == []


async def test_suggest_interests(facebook):
    yoga = (await facebook.call("search_interests", {"query": "yoga", "limit": 1})).data["items"][0]
    result = await facebook.call("suggest_interests", {"interests": [yoga["name"]], "limit": 4})
    assert result.ok, result.text
    assert 0 < len(result.data["results"]) <= 4
    assert all(s["id"] in result.text for s in result.data["results"])
    assert yoga["name"] in result.text.splitlines()[0]


@pytest.mark.parametrize("kind", ["behaviors", "demographics", "life_events"])
async def test_search_targeting_categories(facebook, kind):
    everything = await facebook.call("search_targeting_categories", {"kind": kind, "limit": 500})
    assert everything.ok and everything.data["results"], everything.text
    word = everything.data["results"][0]["name"].split()[0].lower()
    filtered = await facebook.call("search_targeting_categories", {"kind": kind, "query": word, "limit": 500})
    assert filtered.ok and filtered.data["results"]
    assert all(
        word in (c["name"] + " ".join(c.get("path") or []) + c.get("description", "")).lower()
        for c in filtered.data["results"]
    )
    fragment = filtered.data["targeting"]
    if fragment:  # the fragment is usable targeting as it stands
        accepted({**US, **AUTOMATION, **fragment})
    if kind != "demographics":
        assert set(filtered.data["by_field"]) == {kind}


async def test_search_locations_kinds_and_radius(facebook):
    city = await facebook.call(
        "search_locations", {"query": "Berlin", "kinds": ["city"], "radius": 25, "distance_unit": "kilometer"}
    )
    assert city.ok and city.data["results"], city.text
    assert {p["type"] for p in city.data["results"]} == {"city"}
    assert city.data["geo_locations"]["cities"][0] == {
        "key": city.data["results"][0]["key"],
        "radius": 25,
        "distance_unit": "kilometer",
    }
    country = await facebook.call("search_locations", {"query": "Germany", "kinds": ["country"]})
    assert country.data["geo_locations"] == {"countries": ["DE"]}
    too_far = await facebook.call("search_locations", {"query": "Berlin", "radius": 60})
    assert not too_far.ok and too_far.data["blame_field"] == "radius" and "10-50 miles" in too_far.text
    bad_country = await facebook.call("search_locations", {"query": "Berlin", "country_code": "Germany"})
    assert not bad_country.ok and "'DE'" in bad_country.text


async def test_search_built_spec_validates_and_estimates(facebook):
    """A spec assembled only from search results passes validate_targeting and gets an audience estimate."""
    places = await facebook.call("search_locations", {"query": "Germany", "kinds": ["country"]})
    interests = await facebook.call("search_interests", {"query": "yoga", "limit": 3})
    assert places.ok and interests.ok
    targeting = {
        "geo_locations": places.data["geo_locations"],
        **interests.data["targeting"],
        "age_min": 25,
        "age_max": 55,
        **AUTOMATION,
    }
    valid = await facebook.call("validate_targeting", {"targeting": targeting})
    assert valid.ok and valid.data["valid"] is True, valid.text
    assert valid.data["checked_by"] == "facebook" and valid.data["sentence_lines"]
    assert any("Germany" in line for line in valid.data["sentence_lines"])
    estimate = await facebook.call("estimate_audience", {"targeting": targeting, "optimization_goal": "LINK_CLICKS"})
    assert estimate.ok, estimate.text
    lower, upper = estimate.data["audience_lower_bound"], estimate.data["audience_upper_bound"]
    assert 0 < lower <= upper and f"{lower:,}" in estimate.text
    assert estimate.data["verdict"] in ("narrow", "specific", "balanced", "very_broad")
    assert estimate.data["optimization_goal"] == "LINK_CLICKS"


async def test_estimate_says_narrow_and_broad(facebook):
    narrow = await facebook.call(
        "estimate_audience",
        {
            "targeting": {
                "geo_locations": {"zips": [{"key": "US:94304"}]},
                "age_min": 60,
                "genders": [1],
                "flexible_spec": [
                    {
                        "interests": (await facebook.call("search_interests", {"query": "yoga", "limit": 1})).data[
                            "items"
                        ]
                    }
                ],
            }
        },
    )
    broad = await facebook.call(
        "estimate_audience", {"targeting": {"geo_locations": {"country_groups": ["worldwide"]}}}
    )
    assert narrow.ok and broad.ok, (narrow.text, broad.text)
    assert narrow.data["audience_upper_bound"] < broad.data["audience_upper_bound"]
    for result in (narrow, broad):
        upper = result.data["audience_upper_bound"]
        if upper < 50_000:
            assert result.data["verdict"] == "narrow" and "widen" in result.text
        if result.data["audience_lower_bound"] > 500_000_000:
            assert result.data["verdict"] == "very_broad" and "Very broad" in result.text
    assert "$" in broad.text and "/day" in broad.text


async def test_validate_reports_every_local_problem_without_asking_facebook(facebook, sandbox):
    result = await facebook.call(
        "validate_targeting",
        {
            "targeting": {"age_min": 30, "genders": [1], "facebook_positions": ["feed"]},
            "special_ad_categories": ["EMPLOYMENT"],
        },
    )
    assert result.ok and result.data["valid"] is False and result.data["checked_by"] == "local"
    assert [p["rule"] for p in result.data["problems"]] == ["R10", "R11", "R11", "R12", "R15"]
    assert result.data["ad_account_id"] == (await facebook.selections())["ad_account"]  # on every path (issue 20)
    assert "1885364" in result.text and "2490392" in result.text and "Fix:" in result.text
    routes = (await sandbox.stats())["by_route"]
    assert not [route for route in routes if "targetingsentencelines" in route], routes
    await facebook.call("validate_targeting", {"targeting": {**US, **AUTOMATION}})
    routes = (await sandbox.stats())["by_route"]
    assert [route for route in routes if "targetingsentencelines" in route], routes


async def test_validate_uses_the_campaigns_special_categories(facebook):
    campaign = await facebook.call(
        "create_campaign",
        {
            "name": "Homes",
            "objective": "OUTCOME_LEADS",
            "daily_budget": 2000,
            "special_ad_categories": ["HOUSING"],
            "special_ad_category_country": ["US"],
        },
    )
    assert campaign.ok, campaign.text
    args = {"targeting": {**US, **AUTOMATION, "age_min": 30}, "campaign_id": campaign.data["id"]}
    result = await facebook.call("validate_targeting", args)
    assert (
        result.data["valid"] is False
        and "HOUSING" in result.text
        and result.data["problems"][0]["error_subcode"] == 1487079
    )
    fine = await facebook.call("validate_targeting", {**args, "targeting": {**US, **AUTOMATION}})
    assert fine.data["valid"] is True, fine.text


async def test_validate_parse_problems_and_facebook_refusals(facebook):
    bad = await facebook.call(
        "validate_targeting", {"targeting": {"geo_locations": {"countries": ["US", "ZZ"]}, "age_min": 9}}
    )
    assert bad.ok and bad.data["valid"] is False
    assert {p["field"] for p in bad.data["problems"]} == {"targeting.geo_locations.countries[1]", "targeting.age_min"}
    unknown_city = await facebook.call(
        "validate_targeting", {"targeting": {"geo_locations": {"cities": [{"key": "1"}]}, **AUTOMATION}}
    )
    assert unknown_city.ok and unknown_city.data["valid"] is False and unknown_city.data["checked_by"] == "facebook", (
        unknown_city.text
    )
    assert unknown_city.data["problems"][0]["code"] == 100


async def test_describe_targeting(facebook):
    yoga = (await facebook.call("search_interests", {"query": "yoga", "limit": 1})).data["items"]
    result = await facebook.call(
        "describe_targeting",
        {
            "targeting": json.dumps(
                {
                    "geo_locations": {"countries": ["us"]},
                    "age_min": 30,
                    "genders": [2],
                    "flexible_spec": [{"interests": yoga}],
                }
            )
        },
    )
    assert result.ok, result.text
    assert any("United States" in line for line in result.data["sentence_lines"])
    assert "30" in result.text and "United States" in result.data["summary"]
    assert result.data["targeting"]["geo_locations"] == {"countries": ["US"]}
    broken = await facebook.call("describe_targeting", {"targeting": {"geo_locations": {"countries": "Atlantis"}}})
    assert not broken.ok and broken.data["error_subcode"] == 1487079
    assert broken.data["blame_field"] == "targeting.geo_locations.countries[0]" and broken.text.startswith(
        "ERROR validation:"
    )


async def test_recommend_placements_op(facebook):
    video = await facebook.call(
        "recommend_placements", {"creative_type": "video", "objective": "OUTCOME_AWARENESS", "instagram": True}
    )
    assert video.ok and "Reels" in video.text and "Why:" in video.text
    fragment = video.data["targeting"]
    assert {"facebook", "instagram", "audience_network"} <= set(fragment["publisher_platforms"])
    check = await facebook.call("validate_targeting", {"targeting": {**US, **AUTOMATION, **fragment}})
    assert check.data["valid"] is True, check.text
    no_ig = await facebook.call("recommend_placements", {"creative_type": "carousel"})
    assert "instagram" not in no_ig.data["targeting"]["publisher_platforms"] and "instagram=true" in no_ig.text
    auto = await facebook.call("recommend_placements", {"creative_type": "image", "automatic": True})
    assert auto.data["targeting"] == {} and "Advantage+" in auto.text


async def test_ops_are_registered_with_schemas_and_examples(facebook):
    from fi_facebook import REGISTRY

    names = {
        "validate_targeting",
        "describe_targeting",
        "estimate_audience",
        "search_interests",
        "suggest_interests",
        "search_targeting_categories",
        "search_locations",
        "recommend_placements",
    }
    specs = {s.name: s for s in REGISTRY.specs() if s.module == "fb_adset" and s.name in names}
    assert set(specs) == names
    for spec in specs.values():
        assert spec.kind.value == "read" and spec.description and spec.example
        assert all(f.description for f in spec.args_model.model_fields.values()), spec.name
        spec.args_model.model_validate(spec.example)
    helped = await facebook.call("help", {"op": "estimate_audience"})
    assert helped.ok and "targeting" in helped.text


def test_model_covers_the_sdk_fields():
    from facebook_business.adobjects.targeting import Targeting
    from facebook_business.adobjects.targetinggeolocation import TargetingGeoLocation

    from fb_adset import GeoLocations
    from fb_utils import sdk_enum_values

    legacy_location_keys = {"countries", "country", "cities", "regions", "zips"}  # taken into geo_locations
    assert set(sdk_enum_values(Targeting.Field)) - legacy_location_keys <= set(TargetingSpec.model_fields)
    assert set(sdk_enum_values(TargetingGeoLocation.Field)) <= set(GeoLocations.model_fields)
    assert targeting_payload(parse_targeting({"country": "fr", "zips": ["US:10001"]})) == {
        "geo_locations": {"countries": ["FR"], "zips": [{"key": "US:10001"}]}
    }
