"""Acknowledge and clear: who, with what comment, one audit row each, scope enforced."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from accounts.actions import OutOfScope
from accounts.models import ActivityLog
from meters.alarms.actions import AlarmStateError, acknowledge_alarm, clear_alarm
from meters.alarms.events import EventKind
from meters.alarms.models import Alarm, AlarmRule, AlarmState
from meters.models import CommLine
from tests.meters.alarms.helpers import COVER, MAGNET, POWER_DOWN, T0, make_rule, raise_alarm

pytestmark = pytest.mark.django_db


def test_acknowledge_then_clear_by_hand(world):
    make_rule(world.org_a)
    alarm = raise_alarm(world.grid_a.meters[0])
    acked = acknowledge_alarm(alarm, acting_user=world.engineer_a, comment="crew sent", now=T0)
    assert acked.state == AlarmState.ACKNOWLEDGED
    assert acked.acknowledged_by == world.engineer_a and acked.ack_comment == "crew sent"
    assert acked.acknowledged_at == T0
    with pytest.raises(AlarmStateError):
        acknowledge_alarm(acked, acting_user=world.engineer_a)
    cleared = clear_alarm(acked, acting_user=world.engineer_a, comment="fuse replaced")
    assert cleared.state == AlarmState.CLEARED and cleared.cleared_by == world.engineer_a
    with pytest.raises(AlarmStateError):
        clear_alarm(cleared, acting_user=world.engineer_a)
    logs = ActivityLog.objects.filter(object_id=str(alarm.pk)).order_by("pk")
    assert [(log.action, log.user) for log in logs] == [
        ("alarm_acknowledge", world.engineer_a),
        ("alarm_clear", world.engineer_a),
    ]
    assert logs[0].changes["comment"] == "crew sent"
    assert logs[1].changes["state"] == [AlarmState.ACKNOWLEDGED, AlarmState.CLEARED]
    assert logs[0].organisation == world.org_a


def test_other_organisation_cannot_touch_it(world):
    make_rule(world.org_a)
    alarm = raise_alarm(world.grid_a.meters[0])
    for verb in (acknowledge_alarm, clear_alarm):
        with pytest.raises(OutOfScope):
            verb(alarm, acting_user=world.engineer_b)
    # ... nor a user who may only look.
    with pytest.raises(OutOfScope):
        acknowledge_alarm(alarm, acting_user=world.readonly_a)
    alarm.refresh_from_db()
    assert alarm.state == AlarmState.RAISED
    assert not ActivityLog.objects.filter(object_id=str(alarm.pk)).exists()


def test_the_lists_links_are_what_url_reversing_gives(world):
    """The alarm list builds each row's links from one reverse a page: they must equal
    `{% url %}`'s, a serial that needs quoting included, and lead where they say."""
    make_rule(world.org_a)
    odd = world.grid_a.meters[1]
    odd.serial = "A 1+é:~@"
    odd.save()
    alarms = [raise_alarm(world.grid_a.meters[0]), raise_alarm(odd)]
    concentrator = world.grid_a.concentrator
    line = CommLine.objects.create(
        key=f"concentrator:{concentrator.pk}", kind="concentrator", label=concentrator.serial,
        organisation=world.org_a, concentrator=concentrator, down=True, down_since=T0,
    )  # fmt: skip
    rule = AlarmRule.objects.create(
        name="lines", organisation=world.org_a, kinds=[EventKind.LINE_DOWN]
    )
    line_alarm = Alarm.objects.create(
        rule=rule, line=line, organisation=world.org_a, kind=EventKind.LINE_DOWN,
        severity=rule.severity, count=1, first_event_at=T0, last_event_at=T0,
    )  # fmt: skip
    alarms.append(line_alarm)
    client = Client()
    client.force_login(world.engineer_a)
    response = client.get("/alarms/")
    assert response.status_code == 200
    html = response.content.decode()
    assert escape(reverse("meters:concentrator-detail", args=[concentrator.pk])) in html
    for alarm in alarms:
        if alarm.meter_id:
            detail = reverse("meters:meter-detail", args=[alarm.meter.serial])
            assert f'href="{escape(detail)}"' in html
        for verb in ("acknowledge", "clear"):
            assert escape(reverse("meters:alarm-transition", args=[alarm.pk, verb])) in html
    assert client.get(reverse("meters:meter-detail", args=[odd.serial])).status_code == 200
    acknowledged = client.post(
        reverse("meters:alarm-transition", args=[alarms[0].pk, "acknowledge"]),
        {"verb": "acknowledge"},
    )
    assert acknowledged.status_code == 302


# The list's row as the template wrote it before the rows were built in Python (one row of
# `{% for a in object_list %}`); alarm_rows must give the same bytes.
ROW_TEMPLATE = """{% for a in object_list %}
    <tr data-alarm="{{ a.pk }}" data-state="{{ a.state }}">
      <td>{{ a.last_event_at|when_s }}</td>
      <td>{% if a.meter_id %}<a href="{{ a.detail_url }}">{{ a.meter.serial }}</a>{% elif not a.line_id %}<a href="{{ a.link }}">{{ a.subject }}</a>{% elif a.line.concentrator_id %}<a href="{% url 'meters:concentrator-detail' a.line.concentrator_id %}">{{ a.subject }}</a>{% else %}<a href="{% url 'meters:lines' %}?q={{ a.line.key|urlencode }}">{{ a.subject }}</a>{% endif %}</td>
      <td>{{ a.get_kind_display }}{% if a.last_event %} <span class="muted">· last: {{ a.last_event }}</span>{% endif %}</td>
      <td>{{ a.get_severity_display }}</td>
      <td class="count">{{ a.count }}</td>
      <td class="state">{{ a.get_state_display }}{% if a.acknowledged_by %} by {{ a.acknowledged_by }}{% endif %}</td>
      <td>{% if can_change and a.state != "cleared" %}
        <form method="post" action="{{ a.acknowledge_url }}" class="inline">{% csrf_token %}<input name="comment" placeholder="comment" size="12">{% if a.state == "raised" %}<button name="verb" value="acknowledge">Acknowledge</button>{% endif %}<button formaction="{{ a.clear_url }}">Clear</button></form>
      {% endif %}</td>
    </tr>
  {% endfor %}"""  # noqa: E501


def test_the_lists_rows_are_what_the_template_wrote(world, django_assert_num_queries):
    """Rows built in Python (meters/alarms/views.py alarm_rows) equal the template's to the
    byte: every state, a serial and a user name that need escaping, both kinds of line and a
    system alarm (a report's failed delivery) whose reference and link need escaping."""
    from django.template import Context, Template

    from meters.alarms.views import ALARM_ROW_FIELDS, _link_rows, alarm_rows

    kinds = (EventKind.POWER_FAILURE, EventKind.TERMINAL_COVER_OPEN, EventKind.MAGNETIC_TAMPER)
    make_rule(world.org_a, kinds=kinds)
    odd = world.grid_a.meters[1]
    odd.serial = "A&<b>\"1'+é"
    odd.save()
    world.engineer_a.username = "eng<i>&"
    world.engineer_a.save()
    meter = world.grid_a.meters[0]
    raised, acked, cleared = (raise_alarm(meter, code) for code in (POWER_DOWN, COVER, MAGNET))
    acknowledge_alarm(acked, acting_user=world.engineer_a, comment="<script>")
    clear_alarm(cleared, acting_user=world.engineer_a)
    odd_alarm = raise_alarm(odd)
    concentrator = world.grid_a.concentrator
    rule = AlarmRule.objects.create(
        name="lines", organisation=world.org_a, kinds=[EventKind.LINE_DOWN]
    )
    for key, concentrator_id in ((f"concentrator:{concentrator.pk}", concentrator.pk),
                                 ("tcp:10.0.0.1 & <x>", None)):  # fmt: skip
        line = CommLine.objects.create(
            key=key, kind="concentrator" if concentrator_id else "tcp", label=key,
            organisation=world.org_a, concentrator_id=concentrator_id, down=True, down_since=T0,
        )  # fmt: skip
        Alarm.objects.create(
            rule=rule, line=line, organisation=world.org_a, kind=EventKind.LINE_DOWN,
            severity=rule.severity, count=3, first_event_at=T0, last_event_at=T0,
        )  # fmt: skip
    system_rule = AlarmRule.objects.create(
        name="reports", organisation=world.org_a, kinds=[EventKind.REPORT_DELIVERY_FAILED]
    )
    Alarm.objects.create(
        rule=system_rule, organisation=world.org_a, kind=EventKind.REPORT_DELIVERY_FAILED,
        severity=system_rule.severity, count=1, first_event_at=T0, last_event_at=T0,
        reference="report delivery 7 to <a&b>@example.com", link="/reports/runs/7/?x=1&y=<2>",
    )  # fmt: skip
    alarms = list(
        Alarm.objects.select_related("meter__meter_model", "line", "acknowledged_by")
        .only(*ALARM_ROW_FIELDS)  # the list's own columns: nothing more is read per row
        .order_by("pk")
    )
    assert {a.pk for a in alarms} >= {raised.pk, acked.pk, cleared.pk, odd_alarm.pk}
    _link_rows(alarms)
    template = Template(ROW_TEMPLATE)
    csrf = '<input type="hidden" name="csrfmiddlewaretoken" value="TOKEN">'
    for can_change in (True, False):
        context = Context({"object_list": alarms, "can_change": can_change, "csrf_token": "TOKEN"})
        with django_assert_num_queries(0):  # first: the template would load what is missing
            rows = alarm_rows(alarms, can_change, csrf)
        expected = template.render(context)
        assert rows == expected
        assert ("Acknowledge</button>" in expected) is can_change
