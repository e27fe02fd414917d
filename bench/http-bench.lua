-- wrk script for bench/http-bench.sh: POST /heartbeat with distinct run_ids,
-- 1000 per connection, cycling (the first round registers, then they beat).
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

function request()
  counter = counter + 1
  local body = string.format('{"run_id": "bench-%d-%d", "status": "running", "tests_per_sec": 0.9}',
                             thread_id, counter % 1000)
  return wrk.format("POST", "/heartbeat", {["Content-Type"] = "application/json"}, body)
end

function done(summary, latency, requests)
  io.write(string.format("requests/s %.0f p99_ms %.2f errors %d\n",
                         summary.requests / (summary.duration / 1e6),
                         latency:percentile(99) / 1000,
                         summary.errors.status + summary.errors.connect + summary.errors.read
                           + summary.errors.write + summary.errors.timeout))
end
