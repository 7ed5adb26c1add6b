"""Thin API views: authenticate, check input, call a service or selector, wrap the answer."""

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.views import APIView

from campaigns import selectors, services
from campaigns.errors import NotFound, PayloadTooLarge

from . import idempotency, representations, serializers
from .envelope import success
from .pagination import EnvelopePagination

# Room for the form fields and multipart framing around the file itself.
MULTIPART_OVERHEAD_BYTES = 1_048_576


class ApiView(APIView):
    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # Once the key owner is known: a POST with Idempotency-Key claims it, or is answered
        # without running (its earlier answer, 409 while that still runs, 422 for another request).
        idempotency.request_begin(request, view=self)

    def handle_exception(self, exc):
        if isinstance(exc, idempotency.Replay):
            return exc.response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        idempotency.request_end(request, response)
        for header, value in getattr(request, "rate_limit_headers", {}).items():
            response[header] = value
        return response

    def paginate(self, queryset, serializer_class):
        """One page of `queryset` in the envelope, each item by `serializer_class`."""
        paginator = EnvelopePagination()
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        return paginator.get_paginated_response(serializer_class(page, many=True).data)

    def paginate_fetched(self, fetch, represent):
        """One page of what `fetch(offset, limit)` reads (its rows and their total), as
        `represent` (a function of the page's rows) shows it, in the envelope."""
        paginator = EnvelopePagination()
        page = paginator.paginate_fetched(fetch, self.request)
        return paginator.get_paginated_response(represent(page))


class CampaignListCreateView(ApiView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(responses=serializers.CampaignSerializer(many=True))
    def get(self, request):
        def fetch(offset, limit):
            return selectors.campaign_api_page(user=request.user, offset=offset, limit=limit)

        return self.paginate_fetched(fetch, representations.campaign_page)

    @extend_schema(
        request=serializers.CampaignCreateSerializer,
        responses={
            201: serializers.CampaignCreatedSerializer,
            404: OpenApiResponse(description="No phone number or agent of yours has this id."),
            413: OpenApiResponse(description="The file is larger than the limit (20 MB by default)."),
        },
    )
    def post(self, request):
        content_length = int(request.META.get("CONTENT_LENGTH") or 0)
        limit = settings.RECIPIENTS_MAX_FILE_BYTES
        if content_length > limit + MULTIPART_OVERHEAD_BYTES:
            # Refuse before reading the upload at all.
            raise PayloadTooLarge(
                f"The request is {content_length / 1_048_576:.1f} MB; recipients files are limited to "
                f"{limit / 1_048_576:.0f} MB. Split it into several campaigns."
            )
        serializer = serializers.CampaignCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        campaign = services.campaign_create(
            user=request.user,
            name=fields["name"],
            agent_id=fields["agent_id"],
            phone_number_id=fields["phone_number_id"],
            recipients_file=fields["recipients_file"],
            send_immediately=fields["send_immediately"],
            schedule_date=fields.get("schedule_date"),
            schedule_time=fields.get("schedule_time"),
            timezone_name=fields.get("timezone"),
            default_country=fields.get("default_country"),
            skip_invalid_rows=fields["skip_invalid_rows"],
            policy_fields={name: fields.get(name) for name in serializers.CampaignCreateSerializer.POLICY_FIELDS},
        )
        return success(representations.campaign_created(campaign), code=201, message="Campaign created successfully")


class CampaignDetailView(ApiView):
    @extend_schema(responses=serializers.CampaignDetailSerializer)
    def get(self, request, campaign_id):
        row = selectors.campaign_api_row(user=request.user, campaign_id=campaign_id)
        return success(representations.campaign_detail(row))


class CampaignCancelView(ApiView):
    @extend_schema(request=None, responses=serializers.CampaignSerializer)
    def post(self, request, campaign_id):
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
        result = services.campaign_cancel(campaign=campaign)
        data = representations.campaign_representation(result.campaign)
        if result.unconfirmed_batches:
            # Accepted, not done: ElevenLabs has yet to confirm; `error` says why, the worker retries.
            return success(data, code=202, message="Cancel accepted; waiting for ElevenLabs to confirm it")
        return success(data, message="Campaign cancelled")


class CampaignPauseView(ApiView):
    @extend_schema(request=None, responses=serializers.CampaignSerializer)
    def post(self, request, campaign_id):
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
        campaign = services.campaign_pause(campaign=campaign)
        data = representations.campaign_representation(campaign)
        if not campaign.pause_confirmed:
            # Held here; ElevenLabs has yet to confirm for every part. `error` says why, the worker retries.
            return success(data, code=202, message="Pause accepted; waiting for ElevenLabs to confirm it")
        return success(data, message="Campaign paused")


class CampaignResumeView(ApiView):
    @extend_schema(request=None, responses=serializers.CampaignSerializer)
    def post(self, request, campaign_id):
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
        campaign = services.campaign_resume(campaign=campaign)
        return success(representations.campaign_representation(campaign), message="Campaign resumed")


class CampaignRetryView(ApiView):
    @extend_schema(request=None, responses=serializers.CampaignSerializer)
    def post(self, request, campaign_id):
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
        result = services.campaign_retry(campaign=campaign)
        data = {
            **representations.campaign_representation(result.campaign),
            "retried_calls": result.retried_calls,
            "batches": [vars(batch) for batch in result.batches],
        }
        return success(data, message=f"Retrying {result.retried_calls} calls")


class CampaignRecipientsView(ApiView):
    @extend_schema(
        parameters=[serializers.RecipientFilterSerializer], responses=serializers.RecipientSerializer(many=True)
    )
    def get(self, request, campaign_id):
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
        # A plain dict: from a QueryDict, DRF would read `status=` as no filter at all.
        filters = serializers.RecipientFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        recipients = selectors.recipient_list(campaign=campaign, **filters.validated_data)
        return self.paginate(recipients, serializers.RecipientSerializer)


class AgentListView(ApiView):
    @extend_schema(responses=serializers.AgentSerializer(many=True))
    def get(self, request):
        return self.paginate(selectors.agent_list(user=request.user), serializers.AgentSerializer)


class AgentDetailView(ApiView):
    @extend_schema(responses=serializers.AgentSerializer)
    def get(self, request, agent_id):
        agent = selectors.agent_get(user=request.user, agent_id=agent_id)
        return success(serializers.AgentSerializer(agent).data)


class PhoneNumberListView(ApiView):
    @extend_schema(responses=serializers.PhoneNumberSerializer(many=True))
    def get(self, request):
        return self.paginate(selectors.phone_number_list(user=request.user), serializers.PhoneNumberSerializer)


class ApiNotFoundView(ApiView):
    """Any path under /api/ that matches no endpoint, whatever the method."""

    authentication_classes = []
    permission_classes = []
    throttle_classes = []
    schema = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        raise NotFound(f"There is no API endpoint at {request.path}. See /api/v1/docs for the endpoints.")
