"""Repositories: every SQL statement in the package lives in this folder.

Each takes a :class:`~sqlalchemy.orm.Session` and never commits; the caller's ``session_scope``
owns the transaction, so several repositories' writes commit or roll back together.
"""

from hera_router.db.repositories.batches import BatchRepository
from hera_router.db.repositories.costs import CostComponents, CostRepository
from hera_router.db.repositories.decisions import DecisionRepository
from hera_router.db.repositories.estimators import EstimatorVersionRepository
from hera_router.db.repositories.model_calls import ModelCallRepository
from hera_router.db.repositories.openai import OpenAIBatchRepository, OpenAIFileRepository
from hera_router.db.repositories.outbox import OutboxRepository
from hera_router.db.repositories.profiling import ProfilingRepository
from hera_router.db.repositories.requests import RequestRepository
from hera_router.db.repositories.shadow import ShadowRunRepository
from hera_router.db.repositories.subtasks import SubtaskRepository
from hera_router.db.repositories.tenants import ApiKeyRepository, TenantRepository
from hera_router.db.repositories.training import TrainingRunRepository
from hera_router.db.repositories.workers import WorkerRepository

__all__ = [
    "ApiKeyRepository",
    "BatchRepository",
    "CostComponents",
    "CostRepository",
    "DecisionRepository",
    "EstimatorVersionRepository",
    "ModelCallRepository",
    "OpenAIBatchRepository",
    "OpenAIFileRepository",
    "OutboxRepository",
    "ProfilingRepository",
    "RequestRepository",
    "ShadowRunRepository",
    "SubtaskRepository",
    "TenantRepository",
    "TrainingRunRepository",
    "WorkerRepository",
]
