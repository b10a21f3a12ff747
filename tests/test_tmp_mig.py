import asyncio
from cryptography.fernet import Fernet
from admonster_store import Store, head_revision

async def test_opens_at_once(postgres_url):
    key = Fernet.generate_key()
    opened = await asyncio.gather(*(Store.open(postgres_url, secret_key=key) for _ in range(4)), return_exceptions=True)
    errors = [o for o in opened if isinstance(o, BaseException)]
    for o in opened:
        if not isinstance(o, BaseException):
            await o.close()
    assert not errors, errors
