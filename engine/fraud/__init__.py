"""The fraud gate: step 3 of every play (DESIGN.md), between eligibility and the plan.

- ``features``: what a request tells about itself (device, IP, user agent, timestamp, nonce);
- ``policy``: a campaign's named policy, validated and compiled once;
- ``gate``: the rules that need no Redis (lists, replay window, device binding, account age), and the
  checks folded into the claim script (nonces, sliding-window rate limits, accounts per device) so the
  gate costs no extra round trip.
"""
