"""Report jobs: request a customer usage report or (admin) a finance summary, follow its job, download its file.

A tenant key requests reports of its own customers only (403 otherwise, as every customer endpoint),
and sees only their jobs: another tenant's job, and any finance summary, answers the same 404 as an unknown one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.auth import authenticated, require_access
from api.context import ApiContext, context
from api.keys import ApiKey
from api.lookup import unknown_customer
from api.problems import Problem
from api.routes.responses import AUTH_ERRORS, problem
from billing.core.contracts import Id, Printable, ReportFormat, ReportKind, describe_error
from billing.core.errors import PlatformError
from billing.core.invoicing.errors import PeriodError, UnknownCustomer
from billing.core.reports.errors import IdempotencyConflict, ReportScopeError
from billing.core.reports.jobs import JobState, JobStatus
from billing.reports import files

router = APIRouter(tags=["reports"])


class ReportRequest(BaseModel):
    """What to report."""

    model_config = ConfigDict(extra="forbid")

    customer_id: Id | None = Field(default=None, description="The customer reported; none for a finance summary.")
    period: str = Field(description="The month reported, `YYYY-MM` (not in the future).", examples=["2026-09"])
    kind: ReportKind = ReportKind.CUSTOMER_USAGE
    format: ReportFormat = ReportFormat.PDF
    idempotency_key: Printable | None = Field(
        default=None, min_length=1, max_length=256,
        description="Asking again with the same key answers the same job (also the `Idempotency-Key` header).")


class ReportJobView(BaseModel):
    """A report job's status."""

    job_id: str
    customer_id: str | None
    period: str
    kind: ReportKind
    format: ReportFormat
    status: JobStatus
    progress: int = Field(description="Percent done.")
    attempts: int
    error: str | None
    requested_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    status_url: str
    file_url: str | None = Field(description="Where the file is, once the job completed.")


def _view(state: JobState) -> ReportJobView:
    job = state.job
    url = f"/v1/reports/{job.id}"
    return ReportJobView(job_id=job.id, customer_id=job.customer_id, period=job.period, kind=job.kind, format=job.format,
                         status=state.status, progress=state.progress, attempts=state.attempts, error=state.error,
                         requested_at=job.requested_at, updated_at=state.updated_at, finished_at=state.finished_at,
                         status_url=url, file_url=f"{url}/file" if state.status is JobStatus.COMPLETED else None)


class ReportJobPage(BaseModel):
    """One page of report jobs, newest request first; pass ``next_after`` as ``after`` for the next page."""

    items: list[ReportJobView]
    next_after: str | None = Field(description="Job id to pass as `after` for the next page; null on the last page.")


async def _job(ctx: ApiContext, key: ApiKey, job_id: str) -> JobState:
    """The job; the same 404 for an unknown id and another tenant's job."""
    found = await ctx.warehouse.run(ctx.report_jobs.call, lambda reports: reports.jobs.get(job_id))
    if found is None or not key.may_access(found.job.customer_id or ""):
        raise Problem(404, f"no report job {job_id!r}", kind="unknown-report-job")
    return found


JOB_ERRORS = {**AUTH_ERRORS, 404: problem("Unknown job (or another tenant's)."),
              503: problem("The warehouse or Kafka is down; retry later.")}


@router.post(
    "/v1/reports", status_code=202, response_model=ReportJobView, summary="Request a report",
    description="Queues a report job and answers 202 with its status URL; the same idempotency key answers the same "
                "job again (200, nothing queued).",
    responses={**JOB_ERRORS, 200: {"model": ReportJobView, "description": "The job this idempotency key named already."},
               400: problem("The body is not JSON."), 404: problem("Unknown customer."),
               403: problem("The key may not access this customer, or a tenant key asked for a finance summary."),
               409: problem("The idempotency key names another report."),
               422: problem("Malformed or future period, unknown kind or format, a customer missing (usage) or "
                            "given (finance summary).")},
)
async def request_report(request: Request, body: ReportRequest, key: ApiKey = Depends(authenticated),
                         idempotency_key: Annotated[str | None, Header(min_length=1, max_length=256)] = None) -> JSONResponse:
    ctx = context(request)
    if body.kind is ReportKind.FINANCE_SUMMARY and not key.admin:
        raise Problem(403, f"key {key.key_id} is not an admin key; a finance summary needs one", kind="forbidden")
    if body.customer_id is not None:
        require_access(key, body.customer_id)
    if idempotency_key and body.idempotency_key and idempotency_key != body.idempotency_key:
        raise Problem(422, "the Idempotency-Key header and the body's idempotency_key differ; send one", kind="invalid-request")

    def queue(reports):
        try:
            return reports.request(customer_id=body.customer_id, period=body.period, kind=body.kind, fmt=body.format,
                                   scope=key.key_id, idempotency_key=idempotency_key or body.idempotency_key,
                                   now=datetime.now(UTC))
        except PeriodError as exc:
            raise Problem(422, str(exc), kind="invalid-period") from None
        except ReportScopeError as exc:
            raise Problem(422, str(exc), kind="invalid-request") from None
        except ValidationError as exc:
            raise Problem(422, f"Idempotency-Key: {describe_error(exc)}", kind="invalid-request") from None
        except UnknownCustomer:
            raise unknown_customer(body.customer_id) from None
        except IdempotencyConflict as exc:
            raise Problem(409, str(exc), kind="idempotency-key-reused") from None
        except PlatformError as exc:  # Kafka did not take the job (the warehouse's own failures are 503s too)
            raise Problem(503, f"the report job was not queued: {exc}", kind="queue-unavailable",
                          headers={"Retry-After": "5"}) from None

    state, created = await ctx.warehouse.run(ctx.report_jobs.call, queue)
    view = _view(state)
    return JSONResponse(view.model_dump(mode="json"), status_code=202 if created else 200,
                        headers={"Location": view.status_url})


@router.get(
    "/v1/reports", response_model=ReportJobPage, summary="List report jobs",
    description="The caller's report jobs (every job for an admin key, its customers' jobs for a tenant key), newest "
                "request first, one page at a time: pass the previous page's `next_after` as `after`.",
    responses={**JOB_ERRORS, 404: problem("`after` names no job the key may see.")},
)
async def list_reports(
    request: Request,
    after: Annotated[str | None, Query(description="Return jobs requested before this job.", max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 50,
    key: ApiKey = Depends(authenticated),
) -> ReportJobPage:
    ctx = context(request)
    previous = await _job(ctx, key, after) if after else None
    customers = None if key.admin else key.tenants
    found = await ctx.warehouse.run(ctx.report_jobs.call,
                                    lambda reports: reports.jobs.list(limit=limit + 1, customers=customers, after=previous))
    page = found[:limit]
    return ReportJobPage(items=[_view(state) for state in page], next_after=page[-1].job_id if len(found) > limit else None)


@router.get("/v1/reports/{job_id}", response_model=ReportJobView, summary="A report job's status", responses=JOB_ERRORS)
async def get_report(request: Request, job_id: str, key: ApiKey = Depends(authenticated)) -> ReportJobView:
    return _view(await _job(context(request), key, job_id))


@router.get(
    "/v1/reports/{job_id}/file", summary="A report's file", response_class=FileResponse,
    responses={**JOB_ERRORS, 200: {"content": {"text/csv": {}, "application/pdf": {}}},
               409: problem("The job has not completed (queued, running or failed)."),
               410: problem("The file was deleted after the retention period.")},
)
async def get_report_file(request: Request, job_id: str, key: ApiKey = Depends(authenticated)) -> FileResponse:
    ctx = context(request)
    state = await _job(ctx, key, job_id)
    if state.status is JobStatus.EXPIRED:
        raise Problem(410, f"the file of report job {job_id} was deleted after the retention period; request it again",
                      kind="report-expired")
    path = files.path_of(ctx.settings, state.file) if state.file else None
    if state.status is not JobStatus.COMPLETED or path is None or not path.is_file():
        raise Problem(409, f"report job {job_id} is {state.status.value}; it has no file yet"
                           + (f" ({state.error})" if state.error else ""), kind="report-not-ready")
    return FileResponse(path, media_type=files.MEDIA_TYPES[state.job.format], filename=state.file)
