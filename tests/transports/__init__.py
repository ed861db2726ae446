"""Fake network transports, one per HTTP library, replacing the network at its lowest seam so
each library's own request building, status handling and parsing run in the tests.

- `http`: requests (DefiLlama, and ccxt underneath), at `requests.adapters.HTTPAdapter.send`:
  scripted answers per URL, or a server per host.
- `venues`: ccxt 4.5, at the requests adapter of each `Exchange.session` (below
  `Exchange.fetch`): Binance, OKX and Kraken public REST APIs.
- `yahoo`: yfinance 1.7 over curl_cffi, at `curl_cffi.requests.Session.request`: Yahoo's
  cookie, crumb, consent and chart endpoints.
- `akshare`: akshare 1.19 at `requests.Session.send` (Sina, Eastmoney, legulegu, the SSE,
  SZSE and BSE), answered by URL fragments; baostock 0.9 over a loopback server speaking its
  wire protocol. `tests/test_chaos.py` drives every feed with one table.

Every fake accepts the same failure kinds (`failures.Failure`) and turns each into what its library
really sees for it: an exception of that library's transport, or an HTTP answer in the shape the
real service sends. A cross-feed chaos test can therefore drive every feed with one table.
"""
