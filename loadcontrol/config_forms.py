"""One form per configuration section: the operator's fields to and from the canonical value
(``meters.configuration``), whose checks decide; its error is shown on the form."""

from __future__ import annotations

import re
from datetime import datetime

from django import forms
from django.utils import timezone

from meters import configuration as config

LOCAL_INPUT = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
RULE_HELP = "month day weekday HH:MM, e.g. '3 last 7 02:00' (last Sunday of March, 02:00)"
_RULE = re.compile(r"^(\d{1,2})\s+(last|\d{1,2})\s+(any|\d)\s+(\d{1,2}):(\d{2})$")


def _local(value):
    return forms.DateTimeField(
        required=False,
        input_formats=LOCAL_INPUT,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT[0]),
        help_text=value,
    )


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _from_iso(value):
    if not value:
        return None
    return timezone.localtime(datetime.fromisoformat(value))


class SectionForm(forms.Form):
    section = ""

    def to_value(self, data: dict) -> dict:
        raise NotImplementedError

    @classmethod
    def initial_from(cls, value: dict) -> dict:
        raise NotImplementedError

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            self.value = config.clean(self.section, self.to_value(data))
        except config.ConfigError as exc:
            raise forms.ValidationError(str(exc)) from None
        return data


class LimiterForm(SectionForm):
    section = config.LIMITER
    threshold = forms.DecimalField(
        min_value=0, help_text="W: over it for the time below, the meter trips"
    )
    min_over_s = forms.IntegerField(min_value=0, initial=60, label="Over the threshold for (s)")
    min_under_s = forms.IntegerField(
        min_value=0,
        initial=300,
        label="Under again for (s)",
        help_text="before it reconnects by itself",
    )
    reconnect_count = forms.IntegerField(
        min_value=0,
        max_value=255,
        required=False,
        help_text="self-reconnections in a row; empty: leave",
    )
    lockout_s = forms.IntegerField(
        min_value=0,
        required=False,
        label="Lockout (s)",
        help_text="after the last one; 0: until reconnected remotely",
    )
    emergency_threshold = forms.DecimalField(
        min_value=0, required=False, help_text="W, while an emergency profile is active"
    )
    emergency_id = forms.IntegerField(
        min_value=0, max_value=65535, required=False, label="Emergency profile id"
    )
    emergency_activation = _local("local time")
    emergency_duration_s = forms.IntegerField(
        min_value=0, required=False, label="Emergency duration (s)"
    )
    emergency_groups = forms.CharField(
        required=False, help_text="profile ids this meter obeys, e.g. 1, 3"
    )

    def to_value(self, d: dict) -> dict:
        profile = None
        if d.get("emergency_id") is not None:
            profile = {
                "id": d["emergency_id"],
                "activation": _iso(d.get("emergency_activation")),
                "duration_s": d.get("emergency_duration_s") or 0,
            }
        groups = [g for g in re.split(r"[\s,]+", d.get("emergency_groups") or "") if g]
        return {
            "threshold": d["threshold"],
            "emergency_threshold": d.get("emergency_threshold"),
            "min_over_s": d["min_over_s"],
            "min_under_s": d["min_under_s"],
            "emergency_profile": profile,
            "emergency_groups": groups,
            "reconnect_count": d.get("reconnect_count"),
            "lockout_s": d.get("lockout_s"),
        }

    @classmethod
    def initial_from(cls, v: dict) -> dict:
        p = v.get("emergency_profile") or {}
        return {
            **{
                k: v.get(k)
                for k in ("threshold", "emergency_threshold", "min_over_s", "min_under_s")
            },
            "reconnect_count": v.get("reconnect_count"),
            "lockout_s": v.get("lockout_s"),
            "emergency_id": p.get("id"),
            "emergency_activation": _from_iso(p.get("activation")),
            "emergency_duration_s": p.get("duration_s"),
            "emergency_groups": ", ".join(map(str, v.get("emergency_groups", []))),
        }


class TouForm(SectionForm):
    section = config.TOU
    calendar = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text=config.TOU_TEXT_HELP,
        initial="name TOU-1\nday 1 00:00=2 07:00=1 23:00=2\nday 2 00:00=2\n"
        "week WEEK 1 1 1 1 1 2 2\nseason ALL 2024-01-01 WEEK\nspecial 12-25 2",
    )
    activate_at = _local("local time; empty: at once")

    def to_value(self, d: dict) -> dict:
        try:
            value = config.parse_tou_text(d["calendar"])
        except config.ConfigError as exc:
            raise forms.ValidationError(str(exc)) from None
        return {**value, "activate_at": _iso(d.get("activate_at"))}

    @classmethod
    def initial_from(cls, v: dict) -> dict:
        return {"calendar": config.tou_text(v), "activate_at": _from_iso(v.get("activate_at"))}


class ProfileForm(SectionForm):
    section = config.PROFILE
    period_s = forms.IntegerField(
        min_value=60, max_value=86400, initial=900, label="Capture period (s)"
    )
    channels = forms.CharField(
        initial="1-0:1.29.0*255 1-0:2.29.0*255",
        help_text="OBIS codes of the captured values, separated by spaces or commas",
    )

    def to_value(self, d: dict) -> dict:
        return {
            "period_s": d["period_s"],
            "channels": [c for c in re.split(r"[\s,]+", d["channels"]) if c],
        }

    @classmethod
    def initial_from(cls, v: dict) -> dict:
        return {"period_s": v["period_s"], "channels": " ".join(v["channels"])}


class PushForm(SectionForm):
    section = config.PUSH
    destination = forms.CharField(max_length=128, help_text="host:port of the push listener")

    def to_value(self, d: dict) -> dict:
        return {"destination": d["destination"]}

    @classmethod
    def initial_from(cls, v: dict) -> dict:
        return dict(v)


def _rule(text: str, field: str) -> dict | None:
    text = (text or "").strip().lower()
    if not text:
        return None
    m = _RULE.match(text)
    if not m:
        raise forms.ValidationError(f"{field}: {RULE_HELP}")
    month, day, weekday, hour, minute = m.groups()
    return {
        "month": int(month),
        "day": -1 if day == "last" else int(day),
        "weekday": None if weekday == "any" else int(weekday),
        "hour": int(hour),
        "minute": int(minute),
    }


def _rule_text(r: dict | None) -> str:
    if not r:
        return ""
    day = "last" if r["day"] == -1 else r["day"]
    weekday = "any" if r["weekday"] is None else r["weekday"]
    return f"{r['month']} {day} {weekday} {r['hour']:02d}:{r['minute']:02d}"


class ClockForm(SectionForm):
    section = config.CLOCK
    time_zone_minutes = forms.IntegerField(
        min_value=-720,
        max_value=840,
        initial=0,
        help_text="the clock's time zone attribute (minutes)",
    )
    dst_enabled = forms.BooleanField(required=False, label="Daylight saving")
    dst_begin = forms.CharField(required=False, help_text=RULE_HELP)
    dst_end = forms.CharField(required=False, help_text="e.g. '10 last 7 03:00'")
    dst_deviation_minutes = forms.IntegerField(min_value=-120, max_value=120, initial=60)

    def to_value(self, d: dict) -> dict:
        return {
            "time_zone_minutes": d["time_zone_minutes"],
            "dst_enabled": bool(d.get("dst_enabled")),
            "dst_begin": _rule(d.get("dst_begin"), "DST begin"),
            "dst_end": _rule(d.get("dst_end"), "DST end"),
            "dst_deviation_minutes": d["dst_deviation_minutes"],
        }

    @classmethod
    def initial_from(cls, v: dict) -> dict:
        return {**v, "dst_begin": _rule_text(v["dst_begin"]), "dst_end": _rule_text(v["dst_end"])}


class CommunicationForm(SectionForm):
    section = config.COMMUNICATION
    apn = forms.CharField(max_length=64, label="APN", help_text="the GPRS access point name")
    connection_mode = forms.ChoiceField(
        choices=[(name, label) for name, (label, _code) in config.CONNECTION_MODES.items()]
    )
    listen_port = forms.IntegerField(
        min_value=1, max_value=65535, initial=4059, help_text="the TCP port the meter listens on"
    )
    inactivity_timeout_s = forms.IntegerField(
        min_value=0, max_value=65535, initial=120, label="Inactivity time-out (s)"
    )
    use_dhcp = forms.BooleanField(required=False, initial=True, label="Address by DHCP")
    ip_address = forms.CharField(required=False, label="IP address", help_text="without DHCP")
    subnet_mask = forms.CharField(required=False, help_text="without DHCP")
    gateway = forms.CharField(required=False, help_text="without DHCP; may stay empty")

    def to_value(self, d: dict) -> dict:
        return {
            **{k: d.get(k) for k in ("apn", "connection_mode", "listen_port")},
            "inactivity_timeout_s": d["inactivity_timeout_s"],
            "use_dhcp": bool(d.get("use_dhcp")),
            **{k: (d.get(k) or "").strip() or None for k in config.ADDRESSES},
        }

    @classmethod
    def initial_from(cls, v: dict) -> dict:
        return {**v, **{k: v.get(k) or "" for k in config.ADDRESSES}}


class AlarmsForm(SectionForm):
    section = config.ALARMS
    filter_1 = forms.CharField(
        initial="0xFFFFFFFF",
        label="Alarm filter 1",
        help_text="mask of alarm register 1 (0x hexadecimal or decimal): a bit cleared is an "
        "alarm the meter neither registers nor pushes",
    )
    filter_2 = forms.CharField(
        initial="0xFFFFFFFF", label="Alarm filter 2", help_text="mask of alarm register 2"
    )

    def to_value(self, d: dict) -> dict:
        return {"filter_1": d["filter_1"].strip(), "filter_2": d["filter_2"].strip()}

    @classmethod
    def initial_from(cls, v: dict) -> dict:
        return {k: f"0x{v[k]:08X}" for k in ("filter_1", "filter_2")}


class ClockSyncForm(SectionForm):
    section = config.CLOCK_SYNC
    max_drift_s = forms.IntegerField(
        min_value=1, max_value=86400, initial=30, label="Largest drift (s)"
    )

    def to_value(self, d: dict) -> dict:
        return {"max_drift_s": d["max_drift_s"]}

    @classmethod
    def initial_from(cls, v: dict) -> dict:
        return dict(v)


FORMS = {
    form.section: form
    for form in (
        LimiterForm,
        TouForm,
        ProfileForm,
        PushForm,
        ClockForm,
        CommunicationForm,
        AlarmsForm,
        ClockSyncForm,
    )
}


def form_for(section: str, value: dict | None = None, data=None) -> SectionForm:
    """The section's form: bound to `data`, else showing `value` (or the defaults)."""
    cls = FORMS[section]
    if data is not None:
        return cls(data, prefix=section)
    return cls(initial=cls.initial_from(value) if value else None, prefix=section)
