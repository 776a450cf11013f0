"""Serializers for organisations and the users of one's organisation."""

from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from rest_framework import serializers

from accounts import privileges
from accounts.models import Organisation, User

from .base import ScopedRelatedField


class GrantableRolesField(serializers.SlugRelatedField):
    """Roles by name; only those the caller may hand out exist for it (accounts/privileges)."""

    def get_queryset(self):
        request = self.context.get("request")
        if request is None:
            return Group.objects.none()
        return privileges.grantable_roles(request.user)


class OrganisationSerializer(serializers.ModelSerializer):
    parent = ScopedRelatedField(
        queryset=Organisation.objects.all(), action="change", allow_null=True
    )

    class Meta:
        model = Organisation
        fields = ["id", "name", "code", "parent", "path"]
        read_only_fields = ["path"]


class UserSerializer(serializers.ModelSerializer):
    # Null for a superuser of the whole system; only a superuser may leave it empty (the
    # re-check after every write refuses an organisation-less user to anyone else).
    organisation = ScopedRelatedField(
        queryset=Organisation.objects.all(), action="change", allow_null=True
    )
    roles = GrantableRolesField(many=True, slug_field="name", source="groups", required=False)
    password = serializers.CharField(
        write_only=True, required=False, style={"input_type": "password"}
    )

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "first_name",
            "last_name",
            "email",
            "phone",
            "organisation",
            "roles",
            "is_active",
            "password",
            "last_login",
            "date_joined",
        ]
        read_only_fields = ["last_login", "date_joined"]

    def validate_password(self, value):
        validate_password(value)
        return value

    def create(self, validated_data):
        password = validated_data.pop("password", None)
        groups = validated_data.pop("groups", [])
        user = User(**validated_data)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save()
        user.groups.set(groups)
        return user

    def update(self, instance, validated_data):
        password = validated_data.pop("password", None)
        groups = validated_data.pop("groups", None)
        for key, value in validated_data.items():
            setattr(instance, key, value)
        if password:
            instance.set_password(password)
        instance.save()
        if groups is not None:
            instance.groups.set(groups)
        return instance
