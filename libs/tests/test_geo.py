from linkwell.geo import distance_km, locate, normalise_postcode


def test_full_postcode_is_reduced_to_its_sector_centroid() -> None:
    place = locate("ls6 3hn")
    assert place is not None
    assert place.sector == "LS6 3"
    assert place.local_authority == "Leeds"
    assert 53.7 < place.lat < 53.9 and -1.7 < place.lon < -1.5


def test_unknown_sector_falls_back_to_outward_code_and_rubbish_is_refused() -> None:
    assert normalise_postcode("not a postcode") is None
    assert locate("ZZ99 9ZZ") is None
    # a real outward code whose sector is not in the table still gets the outcode centroid
    fallback = locate("LS6 8ZZ")
    assert fallback is not None and fallback.sector is None and fallback.outcode == "LS6"


def test_distance_between_leeds_and_york_is_about_35_km() -> None:
    assert 33 < distance_km(53.7997, -1.5492, 53.9590, -1.0815) < 37
