from __future__ import annotations

from django import forms

from accounts.models import UserPreferences


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = UserPreferences
        fields = ["theme", "language", "email_notifications", "in_app_notifications", "notify_on_sync_failure"]
