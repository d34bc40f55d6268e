from __future__ import annotations

from django import forms

from accounts.models import UserPreferences

# The model's language is free text (no choices: giving it some would be a migration); the form offers a list.
LANGUAGES = [
    ("en", "English"),
    ("de", "Deutsch (German)"),
    ("fr", "Français (French)"),
    ("es", "Español (Spanish)"),
    ("it", "Italiano (Italian)"),
    ("nl", "Nederlands (Dutch)"),
    ("pt", "Português (Portuguese)"),
    ("pl", "Polski (Polish)"),
    ("ja", "日本語 (Japanese)"),
    ("zh-hans", "简体中文 (Simplified Chinese)"),
]
THEMES = [
    (UserPreferences.Theme.SYSTEM, "Same as my device"),
    (UserPreferences.Theme.LIGHT, "Light"),
    (UserPreferences.Theme.DARK, "Dark"),
]


class PreferencesForm(forms.ModelForm):
    theme = forms.ChoiceField(choices=THEMES)
    language = forms.ChoiceField(choices=LANGUAGES)

    class Meta:
        model = UserPreferences
        fields = ["theme", "language", "email_notifications", "in_app_notifications", "notify_on_sync_failure"]
        labels = {
            "email_notifications": "Email notifications",
            "in_app_notifications": "Notifications on the platform",
            "notify_on_sync_failure": "Tell me when a sync to GitHub fails",
        }

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        # A value saved before the list existed stays selectable, rather than silently becoming English.
        current = self.instance.language
        if current and current not in dict(LANGUAGES):
            self.fields["language"].choices = [*LANGUAGES, (current, current)]
