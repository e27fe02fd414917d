-- wrk script for bench/https-bench.sh:
--   wrk ... -s bench/https-bench.lua URL -- MODE [TOKEN]
-- MODE beat:   POST /heartbeat with "Authorization: Bearer TOKEN", 100
--              run_ids per thread, cycling (a first round registers them)
-- MODE read:   GET /v1/agents?limit=20 with "Authorization: Bearer TOKEN"
-- MODE health: GET /health with "Connection: close", no token: every
--              request on a new connection (with https, a new handshake)
local counter = 0
local thread_id = 0
local mode, token

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  mode = args[1] or "beat"
  token = args[2]
end

function request()
  if mode == "health" then
    return wrk.format("GET", "/health", {["Connection"] = "close"})
  end
  local headers = {["Authorization"] = "Bearer " .. token}
  if mode == "read" then
    return wrk.format("GET", "/v1/agents?limit=20", headers)
  end
  counter = counter + 1
  headers["Content-Type"] = "application/json"
  local body = string.format('{"run_id": "bench-%d-%d", "status": "running"}', thread_id, counter % 100)
  return wrk.format("POST", "/heartbeat", headers, body)
end

function done(summary, latency, requests)
  -- "errors": answers other than 2xx/3xx, failed connects, timeouts; with
  -- Connection: close, wrk counts each close by the server as a read
  -- error, so reads and writes are told apart ("socket")
  local e = summary.errors
  io.write(string.format("requests/s %.0f p99_ms %.2f errors %d socket_read/write %d/%d\n",
                         summary.requests / (summary.duration / 1e6),
                         latency:percentile(99) / 1000,
                         e.status + e.connect + e.timeout, e.read, e.write))
end
