"""Errors of the campaign lifecycle."""

from engine.errors import ConflictError


class InvalidTransitionError(ConflictError):
    code = "INVALID_TRANSITION"
    default_message = "The campaign cannot move to that status from where it is."


class PublishRaceError(ConflictError):
    code = "PUBLISH_CONFLICT"
    default_message = "Another publish of this campaign happened at the same time; try again."
