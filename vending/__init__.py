"""STS prepaid vending: token engine, accounts, tariffs, stations, sales, receipts."""
