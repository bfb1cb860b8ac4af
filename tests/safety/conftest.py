from tests.chat.conftest import make_chat, sql  # noqa: F401 (fixtures)
from tests.matching.conftest import database, matched, person  # noqa: F401 (fixtures)
