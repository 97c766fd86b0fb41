"""The dashboard's pages as a test reads them: signed in, their forms' tokens, their tables."""

from __future__ import annotations

import html
import re

import httpx

HTML = {"accept": "text/html"}


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


async def signed_in(client: httpx.AsyncClient, key: str) -> str:
    """Sign the client in with `key`; the session's CSRF token."""
    client.cookies.clear()
    token = csrf_of(await client.get("/dashboard", headers=HTML))
    answer = await client.post("/dashboard/sign-in", data={"key": key, "csrf": token})
    assert answer.status_code == 303, answer.text
    return csrf_of(await client.get("/dashboard/link", headers=HTML))


def cells(page: httpx.Response, table: str) -> list[list[str]]:
    body = page.text.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in rows
    ]
