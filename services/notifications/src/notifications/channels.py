"""Delivery channels. Webhooks: JSON POST to the partner's registered URL, with an id that stays
the same on every retry so the receiver can drop repeats."""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Attempted:
    delivered: bool
    attempts: int
    detail: str


class WebhookChannel:
    def __init__(self, timeout: float = 5.0, attempts: int = 3) -> None:
        self.timeout = timeout
        self.attempts = attempts
        self._client: httpx.AsyncClient | None = None

    async def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def send(self, url: str, delivery_id: str, body: dict[str, Any]) -> Attempted:
        payload = json.dumps(body, separators=(",", ":"))
        detail = ""
        delay = 0.2
        for attempt in range(1, self.attempts + 1):
            headers = {
                "content-type": "application/json",
                "webhook-id": delivery_id,
                "webhook-timestamp": str(int(time.time())),
            }
            try:
                response = await (await self.client()).post(url, content=payload, headers=headers)
                if 200 <= response.status_code < 300:
                    return Attempted(True, attempt, f"HTTP {response.status_code}")
                detail = f"HTTP {response.status_code}"
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    return Attempted(False, attempt, detail)
            except httpx.HTTPError as exc:
                detail = type(exc).__name__
            if attempt < self.attempts:
                await asyncio.sleep(delay + random.uniform(0, delay))
                delay *= 2
        return Attempted(False, self.attempts, detail)
