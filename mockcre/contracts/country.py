"""ISO 3166-1 alpha-3 country codes, and the code a country name or alpha-2 code most likely means.

The documents ask for alpha-3 (``"CHN"``); integrators send ``"China"``, ``"中国"`` or ``"CN"``.
pycountry holds the ISO list and its translations (iso-codes' zh_CN names); the table below adds
the short names people write where the translation gives only the formal one.
"""

from __future__ import annotations

import gettext
from functools import cache

# Everyday Chinese names that iso-codes' zh_CN translation lacks (it has 大韩民国, 中国台湾省, …).
CHINESE_NAMES = {
    "中國": "CHN", "中华人民共和国": "CHN", "中國大陸": "CHN", "中国大陆": "CHN",
    "韩国": "KOR", "韓國": "KOR", "南韩": "KOR", "朝鲜": "PRK", "北韩": "PRK",
    "台湾": "TWN", "臺灣": "TWN", "台灣": "TWN", "中国台湾": "TWN",
    "澳门": "MAC", "澳門": "MAC", "美國": "USA", "美利坚合众国": "USA", "英國": "GBR",
    "俄国": "RUS", "俄羅斯": "RUS", "日本國": "JPN", "德國": "DEU", "法國": "FRA",
    "UK": "GBR",  # not ISO (GB is), but what people write
}


def is_code(text: str) -> bool:
    """Is ``text`` an assigned ISO 3166-1 alpha-3 code, in capitals as the documents write it?"""
    import pycountry  # here, not at import: only bodies with a country pay for it (~40 ms)

    return text.isupper() and pycountry.countries.get(alpha_3=text) is not None


@cache
def _chinese() -> dict[str, str]:
    import pycountry

    names = dict(CHINESE_NAMES)
    for language in ("zh_TW", "zh_CN"):  # simplified last: it wins where both name a country
        try:
            tr = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[language]).gettext
        except OSError:
            continue
        for country in pycountry.countries:
            for english in (country.name, getattr(country, "official_name", None), getattr(country, "common_name", None)):
                if english and tr(english) != english:
                    names.setdefault(tr(english), country.alpha_3)
    return names


@cache
def suggest(text: str) -> str | None:
    """The alpha-3 code ``text`` most likely means (a name in English or Chinese, alpha-2, lower case), or None."""
    text = text.strip()
    if not text:
        return None
    import pycountry

    code = _chinese().get(text)
    if code:
        return code
    try:
        return pycountry.countries.lookup(text).alpha_3  # alpha-2/3, numeric, names; any case
    except LookupError:
        pass
    try:
        found = pycountry.countries.search_fuzzy(text)
    except LookupError:
        return None
    return found[0].alpha_3 if len(found) == 1 else None


def advice(text) -> str:
    """What to send instead of ``text``: ``send "CHN"`` when it can be told, else where to look it up."""
    code = suggest(text) if isinstance(text, str) else None
    return f'send "{code}"' if code else "look the code up in ISO 3166-1 (e.g. \"CHN\" for China)"
