"""Errors that reach a caller: each type carries a stable ``code`` and an HTTP status.

``web/errors.py`` turns any of them into the JSON envelope
``{"error": {"code", "message", "details"}}``; the codes are part of the API
contract and never change meaning.
"""

from __future__ import annotations

from typing import Any, ClassVar


class HuodongError(Exception):
    code: ClassVar[str] = "INTERNAL_ERROR"
    http_status: ClassVar[int] = 500
    default_message: ClassVar[str] = "Something went wrong on our side."

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class ValidationError(HuodongError):
    code = "VALIDATION_ERROR"
    http_status = 422
    default_message = "The request is not valid."


class MalformedRequestError(HuodongError):
    code = "MALFORMED_REQUEST"
    http_status = 400
    default_message = "The request body is not valid JSON."


class UnauthorizedError(HuodongError):
    code = "UNAUTHORIZED"
    http_status = 401
    default_message = "A valid token is required."


class ForbiddenError(HuodongError):
    code = "FORBIDDEN"
    http_status = 403
    default_message = "This token may not do that."


class NotFoundError(HuodongError):
    code = "NOT_FOUND"
    http_status = 404
    default_message = "No such thing."


class ConflictError(HuodongError):
    code = "CONFLICT"
    http_status = 409
    default_message = "That conflicts with the current state."


class PayloadTooLargeError(HuodongError):
    code = "PAYLOAD_TOO_LARGE"
    http_status = 413
    default_message = "The request body is too large."


class MethodNotAllowedError(HuodongError):
    code = "METHOD_NOT_ALLOWED"
    http_status = 405
    default_message = "That method is not allowed here."


class IdempotencyKeyRequiredError(HuodongError):
    code = "IDEMPOTENCY_KEY_REQUIRED"
    http_status = 400
    default_message = "State-changing calls need an Idempotency-Key header."


class IdempotencyKeyReusedError(HuodongError):
    code = "IDEMPOTENCY_KEY_REUSED"
    http_status = 422
    default_message = "This Idempotency-Key was already used with a different request."


class CampaignNotLiveError(HuodongError):
    code = "CAMPAIGN_NOT_LIVE"
    http_status = 409
    default_message = "The campaign is not live."


class NotEligibleError(HuodongError):
    code = "NOT_ELIGIBLE"
    http_status = 403
    default_message = "This player may not take part."


class LimitReachedError(HuodongError):
    code = "LIMIT_REACHED"
    http_status = 409
    default_message = "The player's limit for this campaign is reached."


class SoldOutError(HuodongError):
    code = "SOLD_OUT"
    http_status = 409
    default_message = "Sold out."


class BudgetExhaustedError(HuodongError):
    code = "BUDGET_EXHAUSTED"
    http_status = 409
    default_message = "The campaign's budget is used up."


class UnknownGameError(ValidationError):
    code = "UNKNOWN_GAME"
    default_message = "No such game type."


class UnknownRewardTypeError(ValidationError):
    code = "UNKNOWN_REWARD_TYPE"
    default_message = "No such reward type."


class UnknownActionError(NotFoundError):
    code = "UNKNOWN_ACTION"
    default_message = "This game has no such action."


class DuplicateRegistrationError(Exception):
    """A plugin registered twice under one name: a programming error, never an API answer."""


def all_error_types() -> list[type[HuodongError]]:
    """Every HuodongError subclass loaded so far (for the error catalogue and its test)."""
    seen: list[type[HuodongError]] = []
    stack: list[type[HuodongError]] = [HuodongError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


class OrderNotHeldError(ConflictError):
    code = "ORDER_NOT_HELD"
    default_message = "The order is no longer held."
