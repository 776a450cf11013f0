"""The customer portal, mounted at /portal/ by the root URLs (by name: nothing imports portal)."""

from django.urls import path

from . import account_views, outage_views, pay_views, views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("usage/", views.usage_page, name="usage"),
    path("usage.csv", views.usage_csv, name="usage-csv"),
    path("purchases/", views.purchases, name="purchases"),
    path("purchases/<uuid:reference>/", views.purchase, name="purchase"),
    path("purchases/<uuid:reference>/receipt.pdf", views.receipt_pdf, name="receipt-pdf"),
    path("pay/", pay_views.pay, name="pay"),
    path("pay/<uuid:reference>/", pay_views.payment, name="payment"),
    path("pay/<uuid:reference>/sandbox/", pay_views.sandbox, name="pay-sandbox"),
    path("pay/webhook/<slug:provider_name>/", pay_views.webhook, name="pay-webhook"),
    path("outages/", outage_views.outages_page, name="outages"),
    path("bills/", views.bill_list, name="bills"),
    path("bills/<str:month>/", views.bill_detail, name="bill"),
    path("bills/<str:month>/bill.pdf", views.bill_pdf, name="bill-pdf"),
    path("manifest.webmanifest", views.manifest, name="manifest"),
    path("sw.js", views.service_worker, name="service-worker"),
    path("offline/", views.offline, name="offline"),
    # Accounts: activation, e-mail, password and its reset, the optional second factor.
    path("activate/", account_views.activate, name="activate"),
    path("activate/details/", account_views.activate_details, name="activate-details"),
    path("account/", account_views.account, name="account"),
    path("account/password/", account_views.password, name="password"),
    path("account/email/confirm/", account_views.email_confirm, name="email-confirm"),
    path("account/reset/", account_views.reset, name="reset"),
    path("account/reset/confirm/", account_views.reset_confirm, name="reset-confirm"),
    path("account/two-factor/", account_views.second_factor, name="two-factor"),
    path("account/two-factor/verify/", account_views.verify, name="verify"),
]
