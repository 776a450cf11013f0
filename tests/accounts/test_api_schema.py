"""The OpenAPI 3 schema validates, and every operation in it is exercised by the suite."""

import pytest
import yaml
from openapi_spec_validator import validate

from tests.accounts.test_api_matrix import SPECS
from tests.api_matrix import client_for

# Operations tested outside the generated matrix: "METHOD path" -> the test that does it.
COLLECTION_API = "tests/collection/test_collection_api.py"
VENDING_API = "tests/vending/test_api.py"
VENDING_SCOPING = "tests/vending/test_scoping.py"
VENDING_MATRIX = "tests/vending/test_scoping_matrix.py"
TESTED_ELSEWHERE = {
    "POST /api/token/": "tests/accounts/test_api_auth.py::test_token_authentication",
    "GET /api/activity/": "tests/accounts/test_activity_log.py::test_activity_log_is_scoped",
    "GET /api/activity/{id}/": "tests/accounts/test_activity_log.py::test_activity_log_is_scoped",
    "GET /api/meters/export/": "tests/meters/test_registry_io.py::test_api_export_by_query_format",
    "POST /api/meters/import/": "tests/meters/test_registry_io.py::test_round_trip_changes_nothing",
    # `what=catalogue` on the same two operations: tests/meters/test_catalogue_io.py.
    "POST /api/meters/{id}/read/": f"{COLLECTION_API}::test_on_demand_read_api",
    "POST /api/read-jobs/{id}/run/": f"{COLLECTION_API}::test_run_job_now",
    "GET /api/runs/": f"{COLLECTION_API}::test_runs_are_scoped",
    "GET /api/runs/{id}/": f"{COLLECTION_API}::test_runs_are_scoped",
    "GET /api/runs/{id}/results/": f"{COLLECTION_API}::test_run_job_now",
    "GET /api/meters/{id}/series/": (
        "tests/meters/test_meter_detail.py::test_series_of_another_organisation_is_404"
    ),
    # Vending: sales, shifts and management tokens change only through vending.actions.
    "POST /api/vending/payments/": f"{VENDING_API}::test_payment_returns_a_decodable_token",
    "POST /api/vending/accounts/{id}/adjust-debt/": (
        f"{VENDING_API}::test_accounts_api_validates_the_meter_number"
    ),
    "GET /api/vending/shifts/": f"{VENDING_MATRIX}::test_shifts_are_scoped",
    "GET /api/vending/shifts/{id}/": f"{VENDING_MATRIX}::test_shifts_are_scoped",
    "POST /api/vending/shifts/": f"{VENDING_API}::test_counter_sale_through_the_api",
    "POST /api/vending/shifts/{id}/close/": f"{VENDING_API}::test_counter_sale_through_the_api",
    "GET /api/vending/sales/": f"{VENDING_SCOPING}::test_clerk_sees_only_their_station",
    "GET /api/vending/sales/{id}/": f"{VENDING_SCOPING}::test_readonly_users_get_403_on_writes",
    "POST /api/vending/sales/": f"{VENDING_API}::test_counter_sale_through_the_api",
    "GET /api/vending/sales/{id}/receipt.{fmt}/": (
        f"{VENDING_SCOPING}::test_clerk_sees_only_their_station"
    ),
    "POST /api/vending/sales/{id}/reprint/": (
        f"{VENDING_API}::test_reprint_gives_the_same_token_marked_reprint"
    ),
    "POST /api/vending/sales/{id}/reverse/": f"{VENDING_API}::test_reverse_needs_a_supervisor",
    "POST /api/vending/offline-sales/": (
        "tests/vending/test_offline_sales.py::test_offline_upload_api"
    ),
    "GET /api/vending/reports/{slug}/": (
        "tests/reports/test_vending.py::test_reports_api_json_csv_and_errors"
    ),
    "GET /api/reports/billing/": "tests/reports/test_billing.py::test_api_paged_exact_and_scoped",
    "GET /api/reports/billing/by-meter/": (
        "tests/reports/test_billing.py::test_api_by_meter_cursor_pages_are_the_whole_report"
    ),
    "GET /api/reports/energy-balance/": "tests/reports/test_balance.py::test_api_scoped",
    "GET /api/reports/tamper/": "tests/reports/test_tamper.py::test_page_export_and_api_scoped",
    "GET /api/reports/load/": "tests/reports/test_balance.py::test_load_pages_and_api_scoped",
    "GET /api/reports/patterns/": (
        "tests/reports/test_patterns.py::test_api_summary_paged_and_scoped"
    ),
    "GET /api/reports/load/{id}/": "tests/reports/test_balance.py::test_load_pages_and_api_scoped",
    "GET /api/reports/energy-balance/{id}/": "tests/reports/test_balance.py::test_api_scoped",
    "GET /api/vending/management-tokens/": f"{VENDING_MATRIX}::test_management_orders_are_scoped",
    "GET /api/vending/management-tokens/{id}/": (
        f"{VENDING_MATRIX}::test_management_orders_are_scoped"
    ),
    "POST /api/vending/management-tokens/": (
        f"{VENDING_API}::test_management_tokens_api_role_checks"
    ),
}
# Alarms: read and changed only through meters.alarms.actions (tests/meters/alarms/test_api.py).
ALARM_API = "tests/meters/alarms/test_api.py"
TOKENS = "tests/accounts/test_tokens.py::test_owner_lists_and_revokes_its_tokens_others_cannot"
TESTED_ELSEWHERE |= {
    "GET /api/tokens/": TOKENS,
    "GET /api/tokens/{id}/": TOKENS,
    "DELETE /api/tokens/{id}/": TOKENS,
    "DELETE /api/token/": TOKENS,
}
REREAD = (
    "tests/collection/test_read_windows.py::test_reread_a_named_period_for_a_job_and_for_meters"
)
TESTED_ELSEWHERE |= {
    "POST /api/read-jobs/{id}/reread/": REREAD,
    "POST /api/rereads/": REREAD,
}
COMMANDS = "tests/loadcontrol/test_command_api.py"
TESTED_ELSEWHERE |= {
    "GET /api/commands/": f"{COMMANDS}::test_an_operator_disconnects_and_the_meter_confirms",
    "GET /api/commands/{id}/": f"{COMMANDS}::test_an_operator_disconnects_and_the_meter_confirms",
    "POST /api/commands/": f"{COMMANDS}::test_an_operator_disconnects_and_the_meter_confirms",
    "POST /api/commands/{id}/cancel/": f"{COMMANDS}::test_cancel_a_queued_command_once",
}
BULK = "tests/loadcontrol/test_bulk_api.py::test_a_subtree_is_counted_confirmed_and_approved"
BULK_OPERATIONS = (
    "GET /api/bulk-commands/",
    "GET /api/bulk-commands/{id}/",
    "GET /api/bulk-commands/{id}/progress/",
    "POST /api/bulk-commands/",
    "POST /api/bulk-commands/preview/",
    "POST /api/bulk-commands/{id}/approve/",
    "POST /api/bulk-commands/{id}/cancel/",
)
TESTED_ELSEWHERE |= dict.fromkeys(BULK_OPERATIONS, f"{BULK}_by_a_second_person")
TESTED_ELSEWHERE["POST /api/bulk-commands/{id}/reject/"] = (
    "tests/loadcontrol/test_bulk_api.py::test_a_pending_bulk_is_rejected_by_a_second_person"
    "_and_queues_nothing"
)
SCHEDULES = "tests/loadcontrol/test_schedule_api.py::test_preview_then_create_with_overlaps_seen"
SCHEDULES_APPROVE = (
    "tests/loadcontrol/test_schedule_api.py::test_a_large_schedule_is_listed_and_approved_by"
    "_another"
)
TESTED_ELSEWHERE |= dict.fromkeys(
    (
        "GET /api/load-schedules/{id}/",
        "GET /api/load-schedules/{id}/slots/",
        "POST /api/load-schedules/",
        "POST /api/load-schedules/preview/",
        "POST /api/load-schedules/{id}/cancel/",
    ),
    SCHEDULES,
)
TESTED_ELSEWHERE |= dict.fromkeys(
    ("GET /api/load-schedules/", "POST /api/load-schedules/{id}/approve/"), SCHEDULES_APPROVE
)
TESTED_ELSEWHERE["PUT /api/load-schedules/{id}/"] = (
    "tests/loadcontrol/test_schedule_api.py::test_a_customer_group_schedule_is_changed_with_its"
    "_overlaps_shown_again"
)
ACTUAL_CONFIGURATION = (
    "tests/loadcontrol/test_configuration.py::test_actual_configuration_api_is_scoped_and_read_only"
)
TESTED_ELSEWHERE |= dict.fromkeys(
    ("GET /api/actual-configurations/", "GET /api/actual-configurations/{id}/"),
    ACTUAL_CONFIGURATION,
)
DRIFT = (
    "tests/loadcontrol/test_configuration.py::test_drift_api_is_scoped_and_reapply_queues_commands"
    "_after_the_count"
)
TESTED_ELSEWHERE |= dict.fromkeys(
    ("GET /api/configuration-drift/", "POST /api/configuration-drift/reapply/"), DRIFT
)
REPORT_API = "tests/reports/test_definition_api.py"
REPORT_READ = f"{REPORT_API}::test_versions_runs_and_deliveries_are_scoped_and_read_only"
REPORT_RUN = f"{REPORT_API}::test_definition_saves_versions_and_runs_through_the_api"
TESTED_ELSEWHERE |= dict.fromkeys(
    (
        "GET /api/report-versions/",
        "GET /api/report-versions/{id}/",
        "GET /api/report-runs/",
        "GET /api/report-deliveries/",
        "GET /api/report-deliveries/{id}/",
    ),
    REPORT_READ,
)
TESTED_ELSEWHERE |= dict.fromkeys(
    (
        "GET /api/report-runs/{id}/",
        "GET /api/report-runs/{id}/download/",
        "POST /api/report-definitions/{id}/run/",
    ),
    REPORT_RUN,
)
EXCHANGE_API = "tests/reports/test_exchange_api.py::test_the_log_is_scoped_and_read_only"
TESTED_ELSEWHERE |= dict.fromkeys(
    ("GET /api/exchange-logs/", "GET /api/exchange-logs/{id}/"), EXCHANGE_API
)
READINGS_API = "tests/meters/test_readings_api.py"
TESTED_ELSEWHERE |= {
    "GET /api/readings/": f"{READINGS_API}::test_pages_give_every_row_of_the_scope_once_in_"
    "key_order",
    "GET /api/events/": f"{READINGS_API}::test_events_paged_in_key_order_scoped_and_filtered",
}
TESTED_ELSEWHERE |= {
    "GET /api/alarms/": f"{ALARM_API}::test_alarm_list_is_scoped_and_filtered",
    "GET /api/alarms/{id}/": f"{ALARM_API}::test_alarm_detail_other_organisation_404",
    "POST /api/alarms/{id}/acknowledge/": f"{ALARM_API}::test_acknowledge_and_clear_via_api",
    "POST /api/alarms/{id}/clear/": f"{ALARM_API}::test_acknowledge_and_clear_via_api",
    "GET /api/alarms/outages/": f"{ALARM_API}::test_outages_api",
    "GET /api/notification-deliveries/": f"{ALARM_API}::test_delivery_log_is_scoped",
    "GET /api/notification-deliveries/{id}/": f"{ALARM_API}::test_delivery_log_is_scoped",
}


def matrix_operations() -> set[str]:
    ops = set()
    for spec in SPECS:
        ops |= {f"GET {spec.url}", f"POST {spec.url}"}
        detail = spec.url + "{id}/"
        ops |= {f"{m} {detail}" for m in ("GET", "PUT", "PATCH", "DELETE")}
    return ops


@pytest.fixture
def schema(world):
    response = client_for(world.superuser).get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_schema_is_valid_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    validate(schema)


def test_every_schema_operation_is_exercised(schema):
    declared = matrix_operations() | set(TESTED_ELSEWHERE)
    operations = {
        f"{method.upper()} {path}"
        for path, item in schema["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    missing = sorted(operations - declared)
    assert not missing, f"schema operations no test exercises: {missing}"


@pytest.mark.django_db
def test_api_docs_page_works_offline(world):
    from django.test import Client

    client = Client()
    client.force_login(world.operator_a)
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()


@pytest.mark.django_db
def test_schema_and_docs_need_a_login(world):
    from django.test import Client

    anonymous = Client()
    assert anonymous.get("/api/schema/").status_code == 401
    docs = anonymous.get("/api/docs/")
    assert docs.status_code == 302 and docs["Location"].startswith("/login/")
    token_user = client_for(world.operator_a)
    assert token_user.get("/api/schema/").status_code == 200
