from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.urls import path, re_path
from drf_spectacular.views import SpectacularSwaggerSplitView

from campaigns.events.urls import api_urlpatterns as event_webhook_urls

from . import conversations, erasures, keys, suppressions, views
from .schema import SchemaView

# Swagger UI under the Content-Security-Policy: its start-up script is served as a file (the
# split view) rather than inline; its page's <style> element and the data: images of its
# stylesheet are allowed on this page only.
api_docs = csp_update({"style-src": [UNSAFE_INLINE], "img-src": ["data:"]})(
    SpectacularSwaggerSplitView.as_view(url_name="api-schema", authentication_classes=[], permission_classes=[])
)

# Paths have no trailing slash, as documented; one is tolerated rather than redirected.
urlpatterns = [
    re_path(r"^campaigns/?$", views.CampaignListCreateView.as_view(), name="api-campaigns"),
    re_path(r"^campaigns/(?P<campaign_id>[^/]+)/?$", views.CampaignDetailView.as_view(), name="api-campaign"),
    re_path(
        r"^campaigns/(?P<campaign_id>[^/]+)/cancel/?$", views.CampaignCancelView.as_view(), name="api-campaign-cancel"
    ),
    re_path(
        r"^campaigns/(?P<campaign_id>[^/]+)/retry/?$", views.CampaignRetryView.as_view(), name="api-campaign-retry"
    ),
    re_path(
        r"^campaigns/(?P<campaign_id>[^/]+)/pause/?$", views.CampaignPauseView.as_view(), name="api-campaign-pause"
    ),
    re_path(
        r"^campaigns/(?P<campaign_id>[^/]+)/resume/?$", views.CampaignResumeView.as_view(), name="api-campaign-resume"
    ),
    re_path(
        r"^campaigns/(?P<campaign_id>[^/]+)/recipients/?$",
        views.CampaignRecipientsView.as_view(),
        name="api-campaign-recipients",
    ),
    re_path(
        r"^campaigns/(?P<campaign_id>[^/]+)/recipients/(?P<recipient_id>[^/]+)/?$",
        conversations.RecipientDetailView.as_view(),
        name="api-campaign-recipient",
    ),
    re_path(
        r"^conversations/(?P<conversation_id>[^/]+)/?$",
        conversations.ConversationDetailView.as_view(),
        name="api-conversation",
    ),
    re_path(r"^agents/?$", views.AgentListView.as_view(), name="api-agents"),
    re_path(r"^agents/(?P<agent_id>[^/]+)/?$", views.AgentDetailView.as_view(), name="api-agent"),
    re_path(r"^phone_numbers/?$", views.PhoneNumberListView.as_view(), name="api-phone-numbers"),
    re_path(r"^suppressions/?$", suppressions.SuppressionListCreateView.as_view(), name="api-suppressions"),
    re_path(
        r"^suppressions/(?P<phone_number>[^/]+)/?$",
        suppressions.SuppressionDetailView.as_view(),
        name="api-suppression",
    ),
    re_path(r"^erasures/?$", erasures.ErasureListCreateView.as_view(), name="api-erasures"),
    re_path(r"^erasures/(?P<erasure_id>[^/]+)/?$", erasures.ErasureDetailView.as_view(), name="api-erasure"),
    re_path(r"^api_keys/?$", keys.ApiKeyListCreateView.as_view(), name="api-keys"),
    re_path(r"^api_keys/(?P<api_key_id>[^/]+)/?$", keys.ApiKeyDetailView.as_view(), name="api-key"),
    *event_webhook_urls,
    path(
        "openapi.json",
        SchemaView.as_view(authentication_classes=[], permission_classes=[]),
        name="api-schema",
    ),
    path("docs", api_docs, name="api-docs"),
]
