"""``/v1/models``: the routing profiles a client may pass as ``model`` (``profiles.py``)."""

from __future__ import annotations

from fastapi import APIRouter, status

from hera_router.api.auth import CurrentCaller
from hera_router.api.openai.deps import ERRORS, Service
from hera_router.api.openai.errors import OpenAIError
from hera_router.api.openai.schemas import ModelList, ModelObject

router = APIRouter(prefix="/v1/models", tags=["openai: models"], responses=ERRORS)

CREATED = 1_764_547_200
"""A fixed creation time (2025-12-01): profiles are configuration, not objects with a history."""


def _models(service_profiles: list[tuple[str, str, str]]) -> list[ModelObject]:
    return [
        ModelObject(id=model, created=CREATED, policy=policy, description=text)
        for model, policy, text in service_profiles
    ]


@router.get("", summary="The models (routing profiles) a client may ask for")
def list_models(_: CurrentCaller, service: Service) -> ModelList:
    return ModelList(data=_models(service.profiles.listed()))


@router.get("/{model:path}", summary="One routing profile")
def retrieve_model(model: str, _: CurrentCaller, service: Service) -> ModelObject:
    for listed in _models(service.profiles.listed()):
        if listed.id == model:
            return listed
    raise OpenAIError(
        status.HTTP_404_NOT_FOUND, f"no model {model!r}; GET /v1/models lists the profiles", param="model"
    )
