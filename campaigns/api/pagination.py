from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination

from .envelope import success

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


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
        self.request = request
        sent = {name: request.query_params[name] for name in ("page", "page_size") if name in request.query_params}
        query = PageQuerySerializer(data=sent)
        query.is_valid(raise_exception=True)
        self.page_size = query.validated_data["page_size"]
        paginator = self.django_paginator_class(queryset, self.page_size)
        number = query.validated_data["page"]
        if number > paginator.num_pages:
            raise NotFound(f"There is no page {number}: the last page is {paginator.num_pages}.")
        self.page = paginator.page(number)
        return list(self.page)

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
