"""Regenerates shared/data/phone_time_zones.tsv: libphonenumber's offline map from number
prefixes to IANA time zones (Apache License 2.0, (C) The Libphonenumber Authors), as the
`phonenumbers` package on PyPI ships it. Run: python tests/tools/phone_time_zones.py
(needs `pip install phonenumbers`). Each line: a prefix of the E.164 digits, a tab, the zones
separated by '&'."""

import pathlib

import phonenumbers
import phonenumbers.tzdata as tz

out = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "phone_time_zones.tsv"
lines = [f"# libphonenumber time zones, phonenumbers {phonenumbers.__version__} (Apache-2.0)"]
for prefix, zones in sorted(tz.TIMEZONE_DATA.items()):
    lines.append(f"{prefix}\t{'&'.join(zones)}")
out.write_text("\n".join(lines) + "\n")
print(f"{out}: {len(lines) - 1} prefixes")
