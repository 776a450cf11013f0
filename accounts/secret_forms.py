"""Model forms with secrets (the model's `SECRET_FIELDS`, encrypted at rest): a secret is
never rendered back into the page; a blank submission keeps the stored one; the field's
help says only whether one is stored."""

from __future__ import annotations

from django import forms


class SecretInput(forms.PasswordInput):
    """Never renders the stored value; an empty submission keeps it."""

    def __init__(self):
        super().__init__(render_value=False, attrs={"autocomplete": "new-password"})


class SecretTextarea(forms.Textarea):
    """A multi-line secret (a private key): the box is always empty when shown."""

    def __init__(self):
        super().__init__(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"})

    def format_value(self, value):
        return None


class SecretFieldsForm(forms.ModelForm):
    """Blank keeps the stored secret; `MULTILINE_SECRETS` are typed into a text box."""

    MULTILINE_SECRETS: tuple[str, ...] = ()

    def secret_fields(self) -> tuple[str, ...]:
        return tuple(getattr(self._meta.model, "SECRET_FIELDS", ()))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.secret_fields():
            field = self.fields.get(name)
            if field is None:
                continue
            field.widget = SecretTextarea() if name in self.MULTILINE_SECRETS else SecretInput()
            field.required = False
            is_set = bool(self.instance.pk and getattr(self.instance, name))
            field.help_text = "stored (leave blank to keep)" if is_set else "not set"

    def clean(self):
        cleaned = super().clean()
        for name in self.secret_fields():
            if name in cleaned and not cleaned[name] and self.instance.pk:
                cleaned[name] = getattr(type(self.instance).objects.get(pk=self.instance.pk), name)
                setattr(self.instance, name, cleaned[name])
        return cleaned
