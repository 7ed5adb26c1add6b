"""The recording of a sandbox call: silence as long as the call, as a valid MP3.

ElevenLabs answers `GET /v1/convai/conversations/{id}/audio` with the call's MP3. The sandbox has
no voices to record, so it makes one of silent frames in code (nothing is stored): any player
plays it, for as long as the conversation says the call lasted.
"""

# One MPEG-2 Layer III frame: 8 kbit/s, 16 kHz, mono, no CRC (header FF F3 18 C0), then nine bytes
# of side information and the main data, all zero: no spectral values, so the frame decodes to
# 576 samples (36 ms) of silence. 72 * 8,000 / 16,000 = 36 bytes a frame, 1 KB a second.
FRAME = bytes((0xFF, 0xF3, 0x18, 0xC0)) + bytes(32)
FRAME_SECONDS = 576 / 16_000
# A sandbox call lasts seconds; this keeps a recording small whatever a test sets its steps to.
MAX_SECONDS = 600


def silent_mp3(seconds: float) -> bytes:
    """An MP3 of `seconds` of silence (at least one frame, at most MAX_SECONDS)."""
    seconds = min(max(seconds, 0), MAX_SECONDS)
    return FRAME * max(1, round(seconds / FRAME_SECONDS))
