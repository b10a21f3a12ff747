"""Sandbox targeting: the data set, /search, spec validation (R9-R13, R15, R11) and audience estimates."""

from __future__ import annotations

import importlib.util
import json
import urllib.parse
from pathlib import Path

import pycountry
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fb_sandbox import estimates
from fb_sandbox.errors import GraphError
from fb_sandbox.targeting import DATA_DIR, catalog, validate_targeting
from test_fb_sandbox_helpers import USD, Answer, graph  # noqa: F401

US = {"geo_locations": {"countries": ["US"]}}


def interest(name: str) -> dict:
    return next({"id": i["id"], "name": i["name"]} for i in catalog().categories["interests"] if i["name"] == name)


def place(kind: str, name: str, country: str) -> str:
    return next(p["key"] for p in catalog().geo[kind] if p["name"] == name and p["country_code"] == country)


async def estimate(graph, edge: str, spec, **extra):
    """GET act_x/<edge> with targeting_spec, sent as the one item of a synchronous batch so huge specs fit (the POST
    with method=GET that used to carry them is refused to new apps since 2026-11-04)."""
    text = spec if isinstance(spec, str) else json.dumps(spec)
    query = urllib.parse.urlencode({"targeting_spec": text, **extra})
    answer = await graph.post("", {"batch": json.dumps([{"method": "GET", "relative_url": f"{USD}/{edge}?{query}"}])})
    assert answer.status == 200 and isinstance(answer.body, list), answer.body
    item = answer.body[0]
    return Answer(item["code"], json.loads(item["body"]), {h["name"]: h["value"] for h in item.get("headers", [])})


async def reach(graph, spec) -> tuple[int, int]:
    answer = await estimate(graph, "reachestimate", spec)
    assert answer.status == 200, answer.body
    data = answer.body["data"]
    return data["users_lower_bound"], data["users_upper_bound"]


# ---- the data set


def test_data_set_coverage():
    cat = catalog()
    countries = {c["key"]: c for c in cat.geo["countries"]}
    assert {c.alpha_2 for c in pycountry.countries} <= set(countries)
    assert all(c["type"] == "country" and c["country_code"] == key for key, c in countries.items())
    with_regions = {r["country_code"] for r in cat.geo["regions"]}
    with_cities = {c["country_code"] for c in cat.geo["cities"]}
    assert len(with_regions & with_cities) >= 12
    for city in cat.geo["cities"]:
        assert city["type"] == "city" and city["key"].isdigit()
        assert cat.place("regions", city["region_id"])["name"] == city["region"]
    assert len(cat.geo["zips"]) >= 300 and cat.place("zips", "US:94304")["primary_city"] == "Palo Alto"
    counts = {k: len(v) for k, v in cat.categories.items()}
    assert counts["interests"] >= 150 and counts["behaviors"] >= 30
    assert counts["demographics"] >= 30 and counts["life_events"] >= 15
    ids = [i["id"] for i in cat.all_categories() if len(i["id"]) > 3]
    assert len(ids) == len(set(ids)) and all(len(i) == 13 and i.startswith("6003") for i in ids)
    for item in cat.all_categories():
        assert 0 < item["audience_size_lower_bound"] < item["audience_size_upper_bound"]
    names = {i["name"] for i in cat.categories["interests"]}
    assert {"Online shopping", "Yoga", "Coffee", "Running", "Travel", "Fashion"} <= names


def test_data_set_rebuilds_identically():
    spec = importlib.util.spec_from_file_location("build_targeting_data", DATA_DIR / "build_targeting_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build_geo() == json.loads(Path(DATA_DIR / "targeting_geo.json").read_text("utf-8"))
    assert module.build_categories() == json.loads(Path(DATA_DIR / "targeting_categories.json").read_text("utf-8"))


# ---- /search


async def test_search_adinterest_ranks_prefix_then_contains(graph):
    answer = await graph.get("search", type="adinterest", q="ga")
    names = [i["name"] for i in answer.body["data"]]
    assert answer.status == 200 and names[0].lower().startswith("ga")
    first_contains = next(i for i, n in enumerate(names) if not any(w.lower().startswith("ga") for w in n.split()))
    assert all(not any(w.lower().startswith("ga") for w in n.split()) for n in names[first_contains:])
    yoga = (await graph.get("search", type="adinterest", q="YOGA", limit="1")).body["data"]
    assert len(yoga) == 1 and yoga[0]["name"] == "Yoga" and yoga[0]["id"].startswith("6003")
    assert set(yoga[0]) == {
        "id",
        "name",
        "audience_size_lower_bound",
        "audience_size_upper_bound",
        "path",
        "topic",
        "description",
    }
    assert yoga[0]["path"] == ["Interests", "Fitness and wellness", "Yoga"]
    for odd in ("☕", "Ünïcödé", "'; DROP TABLE x; --", "a" * 2000):
        assert (await graph.get("search", type="adinterest", q=odd)).body == {"data": []}
    missing = await graph.get("search", type="adinterest")
    assert missing.status == 400 and missing.error["code"] == 100


async def test_search_suggestions_and_validity(graph):
    first = (await graph.get("search", type="adinterestsuggestion", interest_list='["Yoga"]', limit="5")).body
    again = (await graph.get("search", type="adinterestsuggestion", interest_list='["yoga"]', limit="5")).body
    assert first == again and len(first["data"]) == 5
    assert all(i["topic"] == "Fitness and wellness" and i["name"] != "Yoga" for i in first["data"])
    pair = (await graph.get("search", type="adinterestsuggestion", interest_list='["Yoga","Running"]')).body["data"]
    assert not {"Yoga", "Running"} & {i["name"] for i in pair}
    valid = (await graph.get("search", type="adinterestvalid", interest_list='["Coffee","Not a thing"]')).body
    assert valid["data"][0]["valid"] is True and valid["data"][0]["id"] == interest("Coffee")["id"]
    assert valid["data"][1] == {"name": "Not a thing", "valid": False}
    bad = await graph.get("search", type="adinterestsuggestion")
    assert bad.status == 400 and bad.error["code"] == 100


async def test_search_adgeolocation(graph):
    cities = (await graph.get("search", type="adgeolocation", q="san fran", location_types='["city"]')).body["data"]
    assert cities[0]["name"] == "San Francisco" and cities[0]["region"] == "California"
    assert cities[0]["type"] == "city" and cities[0]["country_code"] == "US" and isinstance(cities[0]["region_id"], int)
    accent = (await graph.get("search", type="adgeolocation", q="sao paulo")).body["data"]
    assert {"São Paulo"} <= {p["name"] for p in accent}
    country = (await graph.get("search", type="adgeolocation", q="us", location_types='["country"]')).body["data"]
    assert country[0]["key"] == "US" and country[0]["supports_region"] is True
    regions = (
        await graph.get("search", type="adgeolocation", q="new", location_types='["region"]', country_code="US")
    ).body["data"]
    assert regions and all(r["type"] == "region" and r["country_code"] == "US" for r in regions)
    zips = (await graph.get("search", type="adgeolocation", q="94304", location_types='["zip"]')).body["data"]
    assert zips[0]["key"] == "US:94304" and zips[0]["primary_city"] == "Palo Alto"
    bad = await graph.get("search", type="adgeolocation", q="x", location_types='["planet"]')
    assert bad.status == 400 and bad.error["code"] == 100


@pytest.mark.parametrize("klass", ["behaviors", "demographics", "life_events", "interests"])
async def test_search_targeting_categories(graph, klass):
    items = (await graph.get("search", type="adTargetingCategory", **{"class": klass})).body["data"]
    assert len(items) >= 15
    for item in items:
        assert {"id", "name", "type", "path", "audience_size_lower_bound", "audience_size_upper_bound"} <= set(item)
    some = items[3]["name"].split()[0]
    filtered = (await graph.get("search", type="adTargetingCategory", q=some, **{"class": klass})).body["data"]
    assert filtered and all(some.lower() in i["name"].lower() for i in filtered)


async def test_search_unknown_type(graph):
    for params in ({"type": "adplanet", "q": "x"}, {"q": "x"}):
        answer = await graph.get("search", **params)
        assert answer.status == 400 and answer.error["code"] == 100


# ---- validation through the account edges (R9, R10, R13, R15)

BAD_SPECS = [
    ({**US, "favourite_colour": "blue"}, 1487079, ["targeting", "favourite_colour"]),
    ({**US, "age_min": 12}, 1487079, ["targeting", "age_min"]),
    ({**US, "age_max": 70}, 1487079, ["targeting", "age_max"]),
    ({**US, "age_min": 40, "age_max": 30}, 1487079, ["targeting", "age_max"]),
    ({**US, "age_min": "eighteen"}, 1487079, ["targeting", "age_min"]),
    ({**US, "genders": [3]}, 1487079, ["targeting", "genders"]),
    ({**US, "genders": "1"}, 1487079, ["targeting", "genders"]),
    ({"geo_locations": {"countries": ["us"]}}, 1487079, ["targeting", "geo_locations"]),
    ({"geo_locations": {"countries": ["XX"]}}, 1487079, ["targeting", "geo_locations"]),
    ({"geo_locations": {"countries": "US"}}, 1487079, ["targeting", "geo_locations"]),
    ({"geo_locations": {"regions": [{"key": "1"}]}}, 1487079, ["targeting", "geo_locations"]),
    ({"geo_locations": {"zips": [{"key": "US:00000"}]}}, 1487079, ["targeting", "geo_locations"]),
    ({"geo_locations": {"cities": [{"key": "999"}]}}, 1487079, ["targeting", "geo_locations"]),
    ({"geo_locations": {"countries": ["US"], "location_types": ["moon"]}}, 1487079, ["targeting", "geo_locations"]),
    ({"geo_locations": {"countries": ["US"], "planets": ["Mars"]}}, 1487079, ["targeting", "geo_locations"]),
    ({**US, "interests": [{"id": "6003000000000"}]}, 1487079, ["targeting", "interests"]),
    ({**US, "interests": [{"id": "yoga"}]}, 1487079, ["targeting", "interests"]),
    ({**US, "interests": {"id": "6003000000000"}}, 1487079, ["targeting", "interests"]),
    ({**US, "flexible_spec": {"interests": []}}, 1487079, ["targeting", "flexible_spec"]),
    ({**US, "flexible_spec": [{"countries": ["US"]}]}, 1487079, ["targeting", "flexible_spec"]),
    ({**US, "exclusions": [{"interests": []}]}, 1487079, ["targeting", "exclusions"]),
    ({**US, "custom_audiences": [{"id": "abc"}]}, 1487079, ["targeting", "custom_audiences"]),
    ({**US, "locales": ["en"]}, 1487079, ["targeting", "locales"]),
    ({**US, "targeting_automation": {"advantage_audience": 2}}, 1487079, ["targeting", "targeting_automation"]),
    ({**US, "publisher_platforms": "facebook"}, 1487079, ["targeting", "publisher_platforms"]),
    ({"geo_locations": {"countries": ["US"], "country_groups": ["x" * 1001]}}, 1487079, ["targeting", "geo_locations"]),
    # R10: a location or a custom audience
    ({}, 1885364, ["targeting"]),
    ({"geo_locations": {"location_types": ["home"]}, "age_min": 20}, 1885364, ["targeting"]),
    # R13: advantage_audience 1 keeps the age range open
    ({**US, "targeting_automation": {"advantage_audience": 1}, "age_max": 40}, 1870189, ["targeting"]),
    ({**US, "targeting_automation": {"advantage_audience": 1}, "age_min": 30}, 1870189, ["targeting"]),
    # R15: placements consistent
    ({**US, "facebook_positions": ["feed"]}, 2490392, ["targeting"]),
    ({**US, "publisher_platforms": ["instagram"], "facebook_positions": ["feed"]}, 2490392, ["targeting"]),
    ({**US, "publisher_platforms": ["instagram"], "instagram_positions": ["feed"]}, 2490392, ["targeting"]),
    ({**US, "publisher_platforms": ["myspace"]}, 2490392, ["targeting"]),
    ({**US, "device_platforms": ["tv"]}, 2490392, ["targeting"]),
    ({**US, "publisher_platforms": ["messenger"], "messenger_positions": ["threads_stream"]}, 2490392, ["targeting"]),
    # placements Meta removed (v24 video feeds, v26 Instagram Explore; the served default version is v26 or later)
    (
        {**US, "publisher_platforms": ["facebook"], "facebook_positions": ["feed", "video_feeds"]},
        2490392,
        ["targeting"],
    ),
    pytest.param(
        {**US, "publisher_platforms": ["instagram"], "instagram_positions": ["stream", "explore"]},
        2490392,
        ["targeting"],
        marks=pytest.mark.sends_forbidden,
    ),  # sent on purpose: refused
    # Threads needs Instagram Feed; WhatsApp Status needs Instagram Stories
    ({**US, "publisher_platforms": ["threads"], "threads_positions": ["threads_stream"]}, 2490392, ["targeting"]),
    ({**US, "publisher_platforms": ["instagram", "threads"], "instagram_positions": ["reels"]}, 2490392, ["targeting"]),
    ({**US, "publisher_platforms": ["whatsapp"], "whatsapp_positions": ["status"]}, 2490392, ["targeting"]),
    (
        {**US, "publisher_platforms": ["instagram", "whatsapp"], "instagram_positions": ["stream"]},
        2490392,
        ["targeting"],
    ),
]


@pytest.mark.parametrize("spec,subcode,blame", BAD_SPECS)
@pytest.mark.parametrize("edge", ["targetingsentencelines", "delivery_estimate", "reachestimate"])
async def test_invalid_specs_are_refused_like_facebook(graph, spec, subcode, blame, edge):
    answer = await estimate(graph, edge, spec, optimization_goal="REACH")
    assert answer.status == 400, answer.body
    assert (answer.error["code"], answer.error.get("error_subcode")) == (100, subcode)
    assert answer.blame() == blame and answer.error["error_user_msg"]


@pytest.mark.parametrize(
    "restricted",
    [
        {"age_min": 30},
        {"age_max": 50},
        {"genders": [1]},
        {"interests": "first"},
        {"flexible_spec": "first"},
    ],
)
def test_r12_advantage_audience_required_on_create_for_a_restricted_setup(restricted):
    """v23.0+ (Version 23.0 changelog): a restricted setup needs an explicit flag on create; updates never."""
    first = {"id": catalog().categories["interests"][0]["id"]}
    if restricted.get("interests") == "first":
        restricted = {"interests": [first]}
    elif restricted.get("flexible_spec") == "first":
        restricted = {"flexible_spec": [{"interests": [first]}]}
    with pytest.raises(GraphError) as caught:
        validate_targeting(None, {**US, **restricted}, special_ad_categories=[])
    assert (caught.value.code, caught.value.subcode, caught.value.blame) == (100, 1870227, ["targeting"])
    assert "advantage_audience" in caught.value.body()["error"]["error_user_msg"]
    assert validate_targeting(None, {**US, **restricted}, special_ad_categories=[], creating=False)


@pytest.mark.parametrize(
    "setup",
    [
        {},
        {"age_min": 18, "age_max": 65, "genders": [1, 2]},  # default
        {"age_min": 30, "targeting_automation": {"individual_setting": {"age": 1}}},  # relaxed
        {"genders": [2], "targeting_automation": {"individual_setting": {"gender": 1}}},
    ],
)
def test_r12_default_or_relaxed_setup_defaults_advantage_audience_to_1(setup):
    spec = validate_targeting(None, {**US, **setup}, special_ad_categories=[])
    assert spec["targeting_automation"]["advantage_audience"] == 1
    assert validate_targeting(None, US, special_ad_categories=[], creating=False)["age_min"] == 18
    spec = validate_targeting(
        None, {**US, "targeting_automation": {"advantage_audience": 0}, "age_max": 40}, special_ad_categories=[]
    )
    assert (spec["age_min"], spec["age_max"]) == (18, 40)


@pytest.mark.parametrize(
    "change",
    [
        {"age_min": 21},
        {"age_max": 60},
        {"genders": [2]},
        {"geo_locations": {"zips": [{"key": "US:94304"}]}},
        {"excluded_custom_audiences": [{"id": "23850000000000001"}]},
    ],
)
def test_r11_special_ad_categories_forbid_narrow_targeting(change):
    spec = {**US, "targeting_automation": {"advantage_audience": 0}, **change}
    assert validate_targeting(None, spec, special_ad_categories=[])
    for category in ("HOUSING", "CREDIT", "EMPLOYMENT", "FINANCIAL_PRODUCTS_SERVICES"):
        with pytest.raises(GraphError) as caught:
            validate_targeting(None, spec, special_ad_categories=[category])
        assert (caught.value.code, caught.value.subcode, caught.value.blame) == (100, 1487079, ["targeting"])


def test_r11_city_radius():
    sf = place("cities", "San Francisco", "US")
    cases = ((10, "mile", False), (15, "mile", True), (20, "kilometer", False), (25, "kilometer", True))
    for radius, unit, ok in cases:
        spec = {
            "geo_locations": {"cities": [{"key": sf, "radius": radius, "distance_unit": unit}]},
            "targeting_automation": {"advantage_audience": 0},
        }
        if ok:
            assert validate_targeting(None, spec, special_ad_categories=["HOUSING"])
        else:
            with pytest.raises(GraphError) as caught:
                validate_targeting(None, spec, special_ad_categories=["HOUSING"])
            assert caught.value.subcode == 1487079


async def test_valid_spec_is_normalized(graph):
    sf = place("cities", "San Francisco", "US")
    spec = {
        "geo_locations": {
            "cities": [{"key": sf, "radius": 20, "distance_unit": "mile"}],
            "regions": [{"key": place("regions", "Bayern", "DE")}],
            "zips": [{"key": "US:94304"}],
            "location_types": ["home", "recent"],
        },
        "age_min": "21",
        "genders": ["2"],
        "interests": [{"id": int(interest("Yoga")["id"])}],
        "flexible_spec": [
            {"behaviors": [{"id": catalog().categories["behaviors"][0]["id"]}], "relationship_statuses": [3]}
        ],
        "exclusions": {"life_events": [{"id": catalog().categories["life_events"][0]["id"]}]},
        "publisher_platforms": ["facebook", "instagram"],
        "facebook_positions": ["feed", "story"],
        "instagram_positions": ["stream"],
        "device_platforms": ["mobile"],
        "targeting_automation": {"advantage_audience": 0},
    }
    out = validate_targeting(None, spec, special_ad_categories=[])
    assert (out["age_min"], out["age_max"], out["genders"]) == (21, 65, [2])
    assert out["interests"] == [interest("Yoga")]
    lines = await estimate(graph, "targetingsentencelines", spec)
    assert lines.status == 200, lines.body
    content = {line["content"]: line["children"] for line in lines.body["targetingsentencelines"]}
    assert content["Age:"] == ["21 - 65+"] and content["Gender:"] == ["Female"]
    assert any("San Francisco" in c for c in content["Location:"]) and "Interests: Yoga" in content["People Who Match:"]
    assert "And Must Also Match:" in content and "Exclude:" in content and "Placements:" in content


async def test_targetingsentencelines_shape(graph):
    answer = await graph.get(f"{USD}/targetingsentencelines", targeting_spec=json.dumps(US))
    assert answer.status == 200
    assert answer.body["targetingsentencelines"][:2] == [
        {"content": "Location:", "children": ["United States"]},
        {"content": "Age:", "children": ["18 - 65+"]},
    ]
    for path in ("act_999999/targetingsentencelines", "act_999999/reachestimate"):
        hidden = await graph.get(path, targeting_spec=json.dumps(US))
        assert hidden.status == 400 and (hidden.error["code"], hidden.error["error_subcode"]) == (100, 33)
    missing = await graph.get(f"{USD}/reachestimate")
    assert missing.status == 400 and missing.error["code"] == 100


# ---- malformed specs: one Graph error each, never a 500

MALFORMED = [
    "{",
    '{"geo_locations": ',
    "[1, 2]",
    '"just a string"',
    "null",
    "12",
    "{'single': 'quotes'}",
    "NaN",
    '{"age_min": NaN, "geo_locations": {"countries": ["US"]}}',
    '{"age_min": 1e999}',
    "[" * 5000 + "]" * 5000,
    '{"a":' * 3000 + "1" + "}" * 3000,
    '{"\\ud800": 1}',
    json.dumps({**US, "interests": [{"id": "1" * 40}]}),
    json.dumps({**US, "flexible_spec": [{"interests": [[[[[[[[[[{"id": "1"}]]]]]]]]]]}]}),
    json.dumps({**US, "geo_locations": {"countries": ["ÜS", "🇺🇸", "\u0000"]}}),
    json.dumps({**US, "age_min": True}),
    json.dumps({**US, "age_min": 10**30}),
    json.dumps({**US, "geo_locations": {"cities": [{"key": {"nested": 1}}]}}),
    json.dumps({**US, "geo_locations": {"custom_locations": [{"latitude": 91, "longitude": 0}]}}),
    json.dumps({"geo_locations": {"countries": ["US"] * 30_000}}),
    json.dumps({"geo_locations": {"zips": [{"key": "US:94304"}] * 50_001}}),
    json.dumps({**US, "interests": [{"id": "6003000000001"}] * 30_000}),
]


@pytest.mark.parametrize("text", MALFORMED, ids=range(len(MALFORMED)))
async def test_malformed_specs_get_one_graph_error(graph, text):
    answer = await estimate(graph, "delivery_estimate", text, optimization_goal="LINK_CLICKS")
    assert answer.status == 400, answer.body
    assert answer.error["code"] == 100 and answer.error["error_subcode"] == 1487079


async def test_big_lists_within_limits_are_fine(graph):
    zips = [{"key": z["key"]} for z in catalog().geo["zips"]]
    lower, _ = await reach(graph, {"geo_locations": {"zips": zips}})
    assert lower > 1000


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.sampled_from([10**400, -(10**400)])
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | st.sampled_from(["US", "mobile", "facebook", "feed", "home", "6003984504784", "US:94304", "1"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "id",
                    "key",
                    "radius",
                    "distance_unit",
                    "countries",
                    "regions",
                    "cities",
                    "zips",
                    "interests",
                    "behaviors",
                    "advantage_audience",
                    "latitude",
                    "longitude",
                    "name",
                ]
            )
            | st.text(max_size=6),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
spec_keys = st.sampled_from(
    [
        "geo_locations",
        "excluded_geo_locations",
        "age_min",
        "age_max",
        "genders",
        "interests",
        "behaviors",
        "life_events",
        "flexible_spec",
        "exclusions",
        "custom_audiences",
        "excluded_custom_audiences",
        "publisher_platforms",
        "facebook_positions",
        "instagram_positions",
        "device_platforms",
        "targeting_automation",
        "locales",
        "relationship_statuses",
        "education_statuses",
        "keywords",
    ]
) | st.text(max_size=8)


@settings(max_examples=400, deadline=None)
@given(
    spec=st.dictionaries(spec_keys, json_values, max_size=6),
    creating=st.booleans(),
    categories=st.sampled_from([[], ["HOUSING"], ["NONE"]]),
)
def test_fuzz_validation_only_raises_graph_errors(spec, creating, categories):
    try:
        out = validate_targeting(None, spec, special_ad_categories=categories, creating=creating)
    except GraphError as err:
        assert err.code == 100 and err.subcode in (1487079, 1885364, 1870227, 1870189, 2490392)
        return
    lower, upper = estimates.bounds(out)
    assert 1000 <= lower <= upper
    assert estimates.sentence_lines(out)


_cat = catalog()
_interest_refs = st.sampled_from([{"id": i["id"]} for i in _cat.categories["interests"]])
structured_specs = st.fixed_dictionaries(
    {},
    optional={
        "geo_locations": st.fixed_dictionaries(
            {},
            optional={
                "countries": st.lists(st.sampled_from([c["key"] for c in _cat.geo["countries"]]), max_size=4),
                "regions": st.lists(st.sampled_from([{"key": r["key"]} for r in _cat.geo["regions"]]), max_size=3),
                "cities": st.lists(
                    st.builds(
                        lambda c, r, u: {"key": c["key"], "radius": r, "distance_unit": u},
                        st.sampled_from(_cat.geo["cities"]),
                        st.integers(5, 90),
                        st.sampled_from(["mile", "kilometer"]),
                    ),
                    max_size=3,
                ),
                "zips": st.lists(st.sampled_from([{"key": z["key"]} for z in _cat.geo["zips"]]), max_size=3),
                "location_types": st.lists(st.sampled_from(["home", "recent", "travel_in"]), max_size=2),
            },
        ),
        "age_min": st.integers(10, 70),
        "age_max": st.integers(10, 70),
        "genders": st.lists(st.integers(0, 3), max_size=2),
        "interests": st.lists(_interest_refs, max_size=3),
        "flexible_spec": st.lists(
            st.fixed_dictionaries({"interests": st.lists(_interest_refs, min_size=1, max_size=3)}), max_size=3
        ),
        "exclusions": st.fixed_dictionaries({"interests": st.lists(_interest_refs, max_size=2)}),
        "custom_audiences": st.lists(st.builds(lambda n: {"id": str(n)}, st.integers(1, 10**17)), max_size=2),
        "publisher_platforms": st.lists(
            st.sampled_from(["facebook", "instagram", "audience_network", "messenger", "threads"]),
            min_size=1,
            max_size=3,
        ),
        "instagram_positions": st.lists(st.sampled_from(["stream", "story", "reels"]), min_size=1, max_size=2),
        "device_platforms": st.lists(st.sampled_from(["mobile", "desktop"]), min_size=1, max_size=2),
        "targeting_automation": st.fixed_dictionaries({"advantage_audience": st.integers(0, 1)}),
    },
)


@settings(max_examples=300, deadline=None)
@given(spec=structured_specs, extra=_interest_refs)
def test_fuzz_structured_specs_and_or_widens(spec, extra):
    try:
        out = validate_targeting(None, spec, special_ad_categories=[], creating=False)
    except GraphError as err:
        assert err.code == 100 and err.subcode in (1487079, 1885364, 1870189, 2490392)
        return
    lower, upper = estimates.bounds(out)
    assert 1000 <= lower <= upper and estimates.sentence_lines(out)
    if out.get("interests"):
        wider = validate_targeting(
            None, {**spec, "interests": [*spec["interests"], extra]}, special_ad_categories=[], creating=False
        )
        assert estimates.audience_size(wider) >= estimates.audience_size(out)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=st.dictionaries(spec_keys, json_values, max_size=4))
async def test_fuzz_estimate_edges_never_5xx(graph, spec):
    for edge in ("reachestimate", "targetingsentencelines"):
        answer = await estimate(graph, edge, spec)
        assert answer.status in (200, 400), answer.body


# ---- estimates


async def test_estimates_are_deterministic_and_agree(graph):
    spec = {**US, "age_min": 25, "interests": [interest("Coffee")]}
    first, second = await reach(graph, spec), await reach(graph, spec)
    assert first == second and first[0] < first[1]
    delivery = await estimate(graph, "delivery_estimate", spec, optimization_goal="LINK_CLICKS")
    data = delivery.body["data"][0]
    assert (data["estimate_mau_lower_bound"], data["estimate_mau_upper_bound"]) == first
    assert data["estimate_ready"] is True and 0 < data["estimate_dau"] < first[1]
    curve = data["daily_outcomes_curve"]
    assert len(curve) >= 5 and set(curve[0]) == {"spend", "reach", "impressions", "actions"}
    for before, after in zip(curve, curve[1:]):
        assert before["spend"] < after["spend"] and before["impressions"] <= after["impressions"]
        assert after["reach"] <= after["impressions"]
    missing_goal = await estimate(graph, "delivery_estimate", spec)
    assert missing_goal.status == 400 and missing_goal.error["code"] == 100
    bad_goal = await estimate(graph, "delivery_estimate", spec, optimization_goal="WIN")
    assert bad_goal.status == 400 and bad_goal.error["code"] == 100


async def test_estimates_follow_breadth(graph):
    base = await reach(graph, US)
    both = await reach(graph, {"geo_locations": {"countries": ["US", "CA"]}})
    assert both[0] > base[0]
    assert (await reach(graph, {**US, "age_min": 30, "age_max": 40}))[0] < base[0]
    assert (await reach(graph, {**US, "genders": [1]}))[0] < base[0]
    region = await reach(graph, {"geo_locations": {"regions": [{"key": place("regions", "California", "US")}]}})
    city = await reach(graph, {"geo_locations": {"cities": [{"key": place("cities", "San Francisco", "US")}]}})
    assert city[0] < region[0] < base[0]
    yoga = await reach(graph, {**US, "interests": [interest("Yoga")]})
    either = await reach(graph, {**US, "interests": [interest("Yoga"), interest("Running")]})
    both_groups = await reach(
        graph, {**US, "flexible_spec": [{"interests": [interest("Yoga")]}, {"interests": [interest("Running")]}]}
    )
    assert both_groups[0] < yoga[0] < either[0] < base[0]
    excluded = await reach(
        graph, {**US, "interests": [interest("Yoga")], "exclusions": {"interests": [interest("Running")]}}
    )
    assert excluded[0] < yoga[0]
    placements = await reach(graph, {**US, "publisher_platforms": ["instagram"], "instagram_positions": ["story"]})
    assert placements[0] < base[0]
    assert (await reach(graph, {**US, "device_platforms": ["desktop"]}))[0] < base[0]


async def test_tiny_audience_answers_1000_and_custom_audiences(graph):
    tiny = {
        "geo_locations": {"custom_locations": [{"latitude": 37.4, "longitude": -122.1, "radius": 1}]},
        "age_min": 64,
        "age_max": 64,
        "genders": [1],
        "flexible_spec": [
            {"interests": [interest("Camcorders")]},
            {"interests": [interest("Minivans")]},
            {"interests": [interest("Network storage")]},
        ],
    }
    assert await reach(graph, tiny) == (1000, 1000)
    audience_only = await reach(graph, {"custom_audiences": [{"id": "23850000000000001"}]})
    assert 50_000 < audience_only[0] < 500_000
    assert (await reach(graph, {"custom_audiences": [{"id": "23850000000000001"}]})) == audience_only
