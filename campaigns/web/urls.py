from django.urls import path

from campaigns.events.urls import web_urlpatterns as event_webhook_urls

from . import account, exports, suppressions, views

app_name = "web"

urlpatterns = [
    path("", views.campaign_list, name="campaign_list"),
    path("campaigns/new", views.campaign_new, name="campaign_new"),
    path("campaigns/template.csv", views.campaign_template, name="campaign_template"),
    path("uploads", views.upload_keep, name="upload_keep"),
    path("campaigns/<int:campaign_id>", views.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:campaign_id>/progress.json", views.campaign_progress, name="campaign_progress"),
    path("campaigns/<int:campaign_id>/cancel", views.campaign_cancel, name="campaign_cancel"),
    path("campaigns/<int:campaign_id>/retry", views.campaign_retry, name="campaign_retry"),
    path("campaigns/<int:campaign_id>/pause", views.campaign_pause, name="campaign_pause"),
    path("campaigns/<int:campaign_id>/resume", views.campaign_resume, name="campaign_resume"),
    path("campaigns/<int:campaign_id>/export.csv", views.campaign_export, name="campaign_export"),
    path("campaigns/<int:campaign_id>/recipients/<int:recipient_id>", views.call_detail, name="call_detail"),
    path(
        "campaigns/<int:campaign_id>/recipients/<int:recipient_id>/calls/<int:call_id>/recording.mp3",
        views.call_recording,
        name="call_recording",
    ),
    path("campaigns/<int:campaign_id>/export.xlsx", exports.campaign_export_xlsx, name="campaign_export_xlsx"),
    path("account", account.account, name="account"),
    path("agents", views.agent_list, name="agent_list"),
    path("agents/sync", views.agent_sync, name="agent_sync"),
    path("api-keys", views.api_key_list, name="api_key_list"),
    path("api-keys/<int:key_id>/revoke", views.api_key_revoke, name="api_key_revoke"),
    path("suppressions", suppressions.suppression_list, name="suppression_list"),
    path("suppressions/add", suppressions.suppression_add, name="suppression_add"),
    path("suppressions/import", suppressions.suppression_import, name="suppression_import"),
    path("suppressions/remove", suppressions.suppression_remove, name="suppression_remove"),
    *event_webhook_urls,
]
