from django.core.paginator import Page
from django.db.models import IntegerField, Subquery
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination

from .envelope import success

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# The page's rows carry the total under this name (see CountOf).
TOTAL = "page_total"
# No list has this many rows; SQLite's and PostgreSQL's integers end at 2**63.
MAX_OFFSET = 2**62


class CountOf(Subquery):
    """How many rows a queryset has, as a column of another query: the page's rows bring the
    total along, one round trip instead of a COUNT then a fetch. The subquery does not depend on
    the outer row, so the database runs it once per query, not once per row."""

    template = "(SELECT COUNT(*) FROM (%(subquery)s) page_count)"
    output_field = IntegerField()

    def __init__(self, queryset):
        super().__init__(queryset.order_by().values("pk"))


class PageQuerySerializer(serializers.Serializer):
    """`page` and `page_size` as sent: a value that is not a whole number in range is a 422 that
    says so, not silently the first page (a client that loops on pages must learn its mistake)."""

    page = serializers.IntegerField(min_value=1, required=False, default=1)
    page_size = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, required=False, default=PAGE_SIZE)


class EnvelopePagination(PageNumberPagination):
    page_size = PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def paginate_queryset(self, queryset, request, view=None):
        def fetch(offset: int, limit: int) -> tuple[list, int]:
            rows = list(queryset.annotate(**{TOTAL: CountOf(queryset)})[offset : offset + limit])
            if rows:
                return rows, rows[0][TOTAL] if isinstance(rows[0], dict) else getattr(rows[0], TOTAL)
            # Past the last page (or none at all): count apart, only to say which is the last.
            return rows, queryset.count() if offset else 0

        return self.paginate_fetched(fetch, request)

    def paginate_fetched(self, fetch, request) -> list:
        """The requested page of what `fetch(offset, limit)` reads: it returns the page's rows
        and how many rows there are in all, and is given any offset, past the last row too."""
        self.request = request
        sent = {name: request.query_params[name] for name in ("page", "page_size") if name in request.query_params}
        number, self.page_size = 1, PAGE_SIZE
        if sent:  # the defaults need no checking
            query = PageQuerySerializer(data=sent)
            query.is_valid(raise_exception=True)
            number, self.page_size = query.validated_data["page"], query.validated_data["page_size"]
        # Beyond MAX_OFFSET the databases' integers overflow; it is past the last page anyway.
        rows, total = fetch(min((number - 1) * self.page_size, MAX_OFFSET), self.page_size)
        paginator = self.django_paginator_class(rows, self.page_size)
        paginator.count = total  # known: the Paginator must not count the page's own list
        if number > paginator.num_pages:
            raise NotFound(f"There is no page {number}: the last page is {paginator.num_pages}.")
        self.page = Page(rows, number, paginator)
        return rows

    def get_page_size(self, request):
        return self.page_size

    def get_paginated_response(self, data):
        return success(
            data,
            pagination={
                "page": self.page.number,
                "page_size": self.page_size,
                "total": self.page.paginator.count,
                "pages": self.page.paginator.num_pages,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
            },
        )
