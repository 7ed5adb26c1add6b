# Every time Django formats on its own (the admin's columns and read-only fields) carries its
# zone's abbreviation: the user's zone is active, and a time without it could be any zone's.
DATETIME_FORMAT = "j M Y, H:i T"
SHORT_DATETIME_FORMAT = "j M Y, H:i T"
TIME_FORMAT = "H:i T"
DATE_FORMAT = "j M Y"
