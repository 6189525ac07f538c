"""How the stages talk to a system over HTTP: client, authentication, rate limits, transport.

`client` renders a mapping's requests for one system; `auth` caches bearer tokens; `http` is
the transport (timeouts, retries, at-most-once sending); `ratelimit` the token buckets;
`error_bodies` a refusal's own words for the summary; `cassette` records a run's exchanges.
Fetch, look-up and execute all go through here, so a package keeps them out of the stages.
"""
