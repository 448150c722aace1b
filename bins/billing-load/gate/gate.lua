-- wrk script for the gate routes (bench-gate.sh). Environment:
--   GATE_ROUTE   healthz (the reference) | features | entitlements | consume
--   GATE_USERS   comma-separated user ids, taken in turn (one id: a single hot user)
--   GATE_KEY     the API key
--   GATE_RUN     a string unique to this run, prefixed to every idempotency key
-- Every consume carries a new idempotency key (run, thread, counter), so each one counts.
local route = os.getenv("GATE_ROUTE")
local key = os.getenv("GATE_KEY")
local run = os.getenv("GATE_RUN") or tostring(os.time())
local users = {}
for user in string.gmatch(os.getenv("GATE_USERS") or "", "[^,]+") do
    users[#users + 1] = user
end
assert(route == "healthz" or #users > 0, "GATE_USERS is empty")

local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("thread_id", threads)
end

local n = 0
local get_headers = { ["Authorization"] = "Bearer " .. (key or "") }
local post_headers = {
    ["Authorization"] = "Bearer " .. (key or ""),
    ["Content-Type"] = "application/json",
}

function request()
    n = n + 1
    -- Threads start at different users so they do not move in lock-step.
    local user = users[((n + (thread_id or 0) * 7) % math.max(#users, 1)) + 1]
    if route == "healthz" then
        return wrk.format("GET", "/healthz")
    elseif route == "features" then
        return wrk.format("GET", "/v1/users/" .. user .. "/features/advanced_analytics", get_headers)
    elseif route == "entitlements" then
        return wrk.format("GET", "/v1/users/" .. user .. "/entitlements", get_headers)
    elseif route == "consume" then
        local body = string.format(
            '{"metric":"api_calls","quantity":1,"idempotency_key":"%s-%d-%d"}',
            run, thread_id or 0, n)
        return wrk.format("POST", "/v1/users/" .. user .. "/usage", post_headers, body)
    end
    error("unknown GATE_ROUTE " .. tostring(route))
end

function done(summary, latency, requests)
    io.write(string.format("GATE rps=%.1f p50_ms=%.3f p99_ms=%.3f requests=%d errors=%d non2xx=%d\n",
        summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(99) / 1000,
        summary.requests,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
        summary.errors.status))
end
