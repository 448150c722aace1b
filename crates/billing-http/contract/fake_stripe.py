"""Stripe faked for `just contract`: localstripe (pinned by the recipe) in memory on
127.0.0.1:PORT, plus the two calls of the billing server that localstripe lacks, answered as
Stripe answers them: `POST /v1/checkout/sessions` and `POST /v1/billing_portal/sessions`, each
for a customer localstripe knows (404 `resource_missing` otherwise, as Stripe's "No such
customer"). Usage: python3 fake_stripe.py PORT
"""

import secrets
import sys

from aiohttp import web
from localstripe import resources
from localstripe.resources import Customer
from localstripe.server import app, get_post_data, json_response


async def checkout_session(request):
    data = await get_post_data(request)
    Customer._api_retrieve(data.get("customer", ""))
    session_id = "cs_test_" + secrets.token_hex(12)
    return json_response({
        "id": session_id,
        "object": "checkout.session",
        "customer": data["customer"],
        "mode": data.get("mode"),
        "url": "https://checkout.stripe.com/c/pay/" + session_id,
    })


async def portal_session(request):
    data = await get_post_data(request)
    Customer._api_retrieve(data.get("customer", ""))
    session_id = "bps_" + secrets.token_hex(12)
    return json_response({
        "id": session_id,
        "object": "billing_portal.session",
        "customer": data["customer"],
        "return_url": data.get("return_url"),
        "url": "https://billing.stripe.com/p/session/" + session_id,
    })


def main():
    port = int(sys.argv[1])
    resources.store.dump_to_disk = lambda: None  # in memory only
    app.router.add_post("/v1/checkout/sessions", checkout_session)
    app.router.add_post("/v1/billing_portal/sessions", portal_session)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
