"""The production settings plus one bare DRF view (bench/api_urls.py), for bench/api_throughput.py
only: the project's own URLs do not gain it."""

from voiceable.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_urls"
