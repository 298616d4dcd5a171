"""Adding the OpenAI-compatible routes to the producer app."""

from __future__ import annotations

from fastapi import FastAPI

from hera_router.api.openai import batches, chat, files, models
from hera_router.api.openai.service import OpenAIService
from hera_router.api.state import ApiState


def install(app: FastAPI, state: ApiState) -> None:
    app.state.hera_openai = OpenAIService(
        state.settings, state.sessions, state.submissions.dispatcher, publish=state.publisher
    )
    for router in (files.router, batches.router, chat.router, models.router):
        app.include_router(router)
