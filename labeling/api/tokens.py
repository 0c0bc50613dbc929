"""``/api/v1/tokens/``: admins list API tokens (without their keys), create one for a user (the
key comes back once, in the 201) and revoke one. Same rules as the Tokens page (labeling.tokens)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import tokens
from labeling.api.schema import ErrorSerializer
from labeling.roles import is_admin


class IsAdmin(BasePermission):
    message = "only admins manage API tokens"

    def has_permission(self, request: Any, view: Any) -> bool:
        return is_admin(request.user)


class TokenRowSerializer(serializers.Serializer[Any]):
    user = serializers.IntegerField(source="user_id")
    username = serializers.CharField()
    is_admin = serializers.BooleanField()
    created = serializers.DateTimeField()
    key_prefix = serializers.CharField(help_text="the key's first characters only")


class TokenCreateSerializer(serializers.Serializer[Any]):
    user = serializers.IntegerField(help_text="the id of the user the token acts as")


class TokenCreatedSerializer(serializers.Serializer[Any]):
    user = serializers.IntegerField(source="user_id")
    username = serializers.CharField(source="user.username")
    created = serializers.DateTimeField()
    key = serializers.CharField(help_text="the full key: shown this once only")


@extend_schema(tags=["tokens"])
class TokenListCreateView(APIView):
    permission_classes = [IsAuthenticated, IsAdmin]

    @extend_schema(
        summary="List API tokens (admins; no keys)", responses=TokenRowSerializer(many=True)
    )
    def get(self, request: Request) -> Response:
        return Response(TokenRowSerializer(tokens.tokens_list(), many=True).data)

    @extend_schema(
        summary="Create a user's API token (admins; the key is shown once)",
        request=TokenCreateSerializer,
        responses={
            201: TokenCreatedSerializer,
            404: OpenApiResponse(ErrorSerializer, description="No user with that id."),
        },
    )
    def post(self, request: Request) -> Response:
        data = TokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token = tokens.token_create(by=request.user, user_id=data.validated_data["user"])
        response = Response(TokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response


@extend_schema(tags=["tokens"])
class TokenRevokeView(APIView):
    permission_classes = [IsAuthenticated, IsAdmin]

    @extend_schema(summary="Revoke a user's API token (admins)", responses={204: None})
    def delete(self, request: Request, user_id: int) -> Response:
        tokens.token_revoke(by=request.user, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
