from django import forms
from django.contrib.auth import get_user_model

from domains.models import Membership


class MemberForm(forms.Form):
    username = forms.CharField(help_text="The person's sign-in name.")
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)

    def clean_username(self):
        name = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=name, is_active=True).first()
        if user is None:
            raise forms.ValidationError(f"No active user is called “{name}”.")
        return user
