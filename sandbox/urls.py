"""The sandbox's ElevenLabs paths; the project mounts them under `sandbox/elevenlabs/`."""

from django.urls import path, re_path

from sandbox import views

CAMPAIGNS = "v1/convai/outbound-campaigns/campaigns"

urlpatterns = [
    path("v1/convai/batch-calling/submit", views.batch_submit, name="sandbox-batch-submit"),
    path("v1/convai/batch-calling/workspace", views.batch_list, name="sandbox-batch-list"),
    path("v1/convai/batch-calling/<str:batch_id>", views.batch_detail, name="sandbox-batch-detail"),
    path("v1/convai/batch-calling/<str:batch_id>/cancel", views.batch_cancel, name="sandbox-batch-cancel"),
    path("v1/convai/batch-calling/<str:batch_id>/retry", views.batch_retry, name="sandbox-batch-retry"),
    path("v1/convai/agents", views.agent_list, name="sandbox-agent-list"),
    path("v1/convai/agents/<str:agent_id>", views.agent_detail, name="sandbox-agent-detail"),
    path("v1/convai/phone-numbers", views.phone_number_list, name="sandbox-phone-number-list"),
    path(
        "v1/convai/conversations/<str:conversation_id>",
        views.conversation,
        name="sandbox-conversation-detail",
    ),
    path(
        "v1/convai/conversations/<str:conversation_id>/audio",
        views.conversation_audio,
        name="sandbox-conversation-audio",
    ),
    path(f"{CAMPAIGNS}", views.campaign_list, name="sandbox-campaign-list"),
    path(f"{CAMPAIGNS}/submit", views.campaign_submit, name="sandbox-campaign-submit"),
    path(f"{CAMPAIGNS}/<str:campaign_id>", views.campaign_detail, name="sandbox-campaign-detail"),
    path(f"{CAMPAIGNS}/<str:campaign_id>/progress", views.campaign_progress, name="sandbox-campaign-progress"),
    path(f"{CAMPAIGNS}/<str:campaign_id>/pause", views.campaign_pause, name="sandbox-campaign-pause"),
    path(f"{CAMPAIGNS}/<str:campaign_id>/resume", views.campaign_resume, name="sandbox-campaign-resume"),
    path(f"{CAMPAIGNS}/<str:campaign_id>/stop", views.campaign_stop, name="sandbox-campaign-stop"),
    path(f"{CAMPAIGNS}/<str:campaign_id>/leads", views.campaign_leads, name="sandbox-campaign-leads"),
    path(
        f"{CAMPAIGNS}/<str:campaign_id>/leads/<str:lead_id>",
        views.campaign_lead,
        name="sandbox-campaign-lead",
    ),
    path(f"{CAMPAIGNS}/<str:campaign_id>/calls", views.campaign_calls, name="sandbox-campaign-calls"),
    # Anything else answers like FastAPI: 404 {"detail": "Not Found"}.
    re_path(r"^.*$", views.not_found, name="sandbox-not-found"),
]
