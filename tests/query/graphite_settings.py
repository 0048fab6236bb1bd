"""graphite-web local settings for the differential tests, read from the environment."""

import os

SECRET_KEY = "citymesh-differential-tests"
STORAGE_DIR = os.environ["CITYMESH_GRAPHITE_STORAGE"]
WHISPER_DIR = os.path.join(STORAGE_DIR, "whisper")
STANDARD_DIRS = [WHISPER_DIR]
LOG_DIR = os.path.join(STORAGE_DIR, "log")
INDEX_FILE = os.path.join(STORAGE_DIR, "index")
DATABASES = {
    "default": {
        "NAME": os.path.join(STORAGE_DIR, "graphite.db"),
        "ENGINE": "django.db.backends.sqlite3",
    }
}
TAGDB = "graphite.tags.localdatabase.LocalDatabaseTagDB"
TIME_ZONE = "UTC"
LOG_RENDERING_PERFORMANCE = False
LOG_CACHE_PERFORMANCE = False
CARBONLINK_HOSTS = []
