"""Admin users (the people who sign in to the admin page): list, add, change a role. Admins only; audited."""

from __future__ import annotations

from typing import Any

from flask import g

from campaigns.models import AdminRole
from campaigns.users import AdminUserService, view

from ..api.schemas import ErrorSchema
from ..auth import require_admin
from ..requestctx import container, db
from . import blp
from .schemas import AdminUserSchema, NewAdminUserRequest, RoleRequest


def _service() -> AdminUserService:
    return AdminUserService(db(), clock=container().clock)


@blp.route("/users", methods=["GET"])
@require_admin(AdminRole.ADMIN)
@blp.response(200, AdminUserSchema(many=True))
def list_users() -> list[dict[str, Any]]:
    return [view(u) for u in _service().list()]


@blp.route("/users", methods=["POST"])
@require_admin(AdminRole.ADMIN)
@blp.arguments(NewAdminUserRequest)
@blp.response(201, AdminUserSchema)
@blp.alt_response(409, schema=ErrorSchema, description="EMAIL_TAKEN")
@blp.alt_response(422, schema=ErrorSchema)
def create_user(body: dict[str, Any]) -> dict[str, Any]:
    """Add a person who signs in to the admin page (a password of at least 10 characters)."""
    return view(_service().create(**body, actor=g.actor))


@blp.route("/users/<int(max=2147483647):user_id>/role", methods=["PUT"])
@require_admin(AdminRole.ADMIN)
@blp.arguments(RoleRequest)
@blp.response(200, AdminUserSchema)
@blp.alt_response(404, schema=ErrorSchema)
def set_role(body: dict[str, Any], user_id: int) -> dict[str, Any]:
    return view(_service().set_role(user_id, body["role"], actor=g.actor))
