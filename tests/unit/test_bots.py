"""Telling people from previews, crawlers and scanners by User-Agent: real agents of both kinds,
the same answers as crawlerdetect's own matcher, the length cap, and where a tap classifies."""

from __future__ import annotations

import re

import pytest
from crawlerdetect import CrawlerDetect
from hypothesis import given, settings
from hypothesis import strategies as st

from shortener.text import bots
from tests.support.agents import PREVIEWS

# Phones, tablets and desktops, in-app browsers of messengers and social apps among them: those
# are people tapping.
PEOPLE = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 Instagram 329.0.0.41.93 (iPhone14,5; iOS 17_4; en_US; en; "
    "scale=3.00; 1170x2532; 590197017)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/460.0.0.41.105;FBBV/589000000;FBDV/iPhone14,5;"
    "FBMD/iPhone;FBSN/iOS;FBSV/17.4;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 Safari Line/14.5.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 Snapchat/12.80.0.40 (like Safari/8615.3.12.10.3, panda)",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 12; Pixel 6 Build/SQ3A.220705.004; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/103.0.5060.71 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-A546B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 "
    "[FB_IAB/FB4A;FBAV/461.0.0.43.108;]",
    "Mozilla/5.0 (Linux; U; Android 10; en-US; RMX1971 Build/QKQ1.190918.001) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/78.0.3904.108 "
    "UCBrowser/13.4.0.1306 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; HarmonyOS; ELS-NX9; HMSCore 6.13.0.302) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.88 HuaweiBrowser/14.0.5.302 "
    "Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "YaBrowser/24.1.5.88.00 SA/3 Mobile Safari/537.36",
    # Yandex's search app: crawlerdetect's pattern for Yandex's robots excludes it by a
    # lookahead, which RE2 has not.
    "Mozilla/5.0 (Linux; Android 11; M2010J19SG) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/118.0.5993.111 Mobile Safari/537.36 YandexSearch/23.110.1",
    # A phone brand with "bot" in its name.
    "Mozilla/5.0 (Linux; Android 10; CUBOT P40) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/114.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
    "Mozilla/5.0 (Mobile; LYF/F300B/LYF-F300B-001-01-15-130718-i;Android; rv:48.0) Gecko/48.0 "
    "Firefox/48.0 KAIOS/2.5",
    "Opera/9.80 (J2ME/MIDP; Opera Mini/6.5.27510/34.1624; U; en) Presto/2.8.119 Version/11.10",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 OPR/110.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
]

# Link previews of messengers and social networks, mail scanners, search engines' crawlers,
# headless browsers, HTTP libraries and monitors, and no agent at all.
BOTS = [
    *PREVIEWS,
    "   ",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; "
    "+http://www.google.com/bot.html) Chrome/124.0.6367.155 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/124.0.6367.155 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
    "+http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
    "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
    "Twitterbot/1.0",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (compatible; Yandex)",
    "Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)",
    "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "Mozilla/5.0 (compatible; Pinterestbot/1.0; +http://www.pinterest.com/bot.html)",
    "Mozilla/5.0 (compatible; redditbot/1.0; +http://www.reddit.com/feedback)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
    "+https://openai.com/gptbot)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/124.0.6367.60 Safari/537.36",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/100.0.4896.127 Safari/537.36 BingPreview/1.0b",
    "Iframely/1.3.1 (+https://iframely.com/docs/about)",
    "Mozilla/5.0 (compatible; Embedly/0.2; +http://support.embed.ly/)",
    "curl/8.5.0",
    "Wget/1.21.4",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "Java/17.0.2",
    "Apache-HttpClient/4.5.14 (Java/17.0.10)",
    "PostmanRuntime/7.37.3",
    "okhttp/4.12.0",
    "axios/1.6.8",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
]


@pytest.mark.parametrize("agent", PEOPLE)
def test_people_are_not_bots(agent: str) -> None:
    assert not bots.is_bot(agent)


@pytest.mark.parametrize("agent", BOTS)
def test_bots_are_bots(agent: str) -> None:
    assert bots.is_bot(agent)


_crawler_detect = CrawlerDetect()
_previews = re.compile(bots.PREVIEW_AGENTS, re.IGNORECASE)


def crawlerdetect_is_bot(agent: str) -> bool:
    """The answer of crawlerdetect's own matcher (Python's `re`), with the previews added."""
    if not agent.strip():
        return True
    return bool(_previews.search(agent)) or bool(_crawler_detect.is_crawler(agent))


@pytest.mark.parametrize("agent", PEOPLE + BOTS)
def test_real_agents_get_crawlerdetects_answer(agent: str) -> None:
    assert bots.is_automated(agent) == crawlerdetect_is_bot(agent)


# Pieces of real agents and of crawlerdetect's lists (exclusions, anchored and lookahead
# patterns), and Latin-1 text: a header's bytes are read as Latin-1.
AGENT_TOKENS = [
    "Mozilla/5.0", "Mozilla", " ", "(", ")", ";", "/", ".", ",", "_", "-", "+", "compatible",
    "Windows NT 10.0", "Win64", "x64", "WOW64", "Macintosh", "Intel Mac OS X 10_15_7",
    "iPhone", "CPU iPhone OS 17_4 like Mac OS X", "CPU OS 16_6 like Mac OS X", "Linux",
    "Android 14", "Build/UP1A", "AppleWebKit/537.36", "(KHTML, like Gecko)", "Gecko/20100101",
    "rv:125.0", "Chrome/124.0.0.0", "Safari/537.36", "Mobile", "Version/17.4", "Firefox/125.0",
    "Edg/124.0", "OPR/110.0", "Opera", "Trident/7.0", "Yandex", "Search", "YandexSearch",
    "YandexBot", "Sear", "bot", "Bot", "b0t", "cubot", "; M bot", "crawler", "spider",
    "Googlebot/2.1", "bingbot", "facebookexternalhit/1.1", "Twitterbot", "WhatsApp/2.23",
    "MSOffice", "curl/8.5.0", "Java/17", "git/2.4", "Dart/3.1", "http://", "+https://x.example",
    "headless", "HeadlessChrome", "Dalvik/2.1.0", "okhttp", "python-requests", "monitoring",
    "checker", "reader", "YLT", "Zabbix", "Amazon CloudFront", "é", "\xa0", "\t", "ÿ", "µ",
]  # fmt: skip
agents = st.lists(
    st.one_of(
        st.sampled_from(AGENT_TOKENS),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=6),
    ),
    max_size=25,
).map("".join)


@settings(max_examples=800, deadline=None)
@given(agents)
def test_generated_agents_get_crawlerdetects_answer(agent: str) -> None:
    assert bots.is_automated(agent) == crawlerdetect_is_bot(agent)


def test_only_the_start_of_a_long_agent_counts() -> None:
    person = PEOPLE[1]
    padding = " " * bots.MAX_AGENT_CHARS
    assert bots.is_bot(person + " Googlebot/2.1")
    assert not bots.is_bot(person + padding + " Googlebot/2.1")
    assert bots.is_bot("Googlebot/2.1 " + person + padding + "x" * 100_000)
    assert bots.is_automated(person + padding + " Googlebot/2.1")
