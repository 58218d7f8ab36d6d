"""The home page shows the bank and says when a read model is still catching up."""

import pytest

from bankdemo import services

pytestmark = pytest.mark.usefixtures("log_db")


def test_home_shows_accounts_events_and_lag(client):
    account, _ = services.account_open(owner="Ada Lovelace", currency="JPY")
    services.account_deposit(account_id=account.id, amount="1500")
    page = client.get("/").content.decode()
    assert "Ada Lovelace" in page
    assert "1500" in page
    assert "bank.MoneyDeposited" in page
    assert "processing: 2 events behind" in page
