-- wrk script of `make bench-api` (benchmarks/bench_api.py):
--   wrk ... -s benchmarks/wrk_score.lua http://127.0.0.1:PORT/v1/score -- BODIES_FILE
-- One Lua state per wrk thread: init() reads the request bodies (one JSON body a line) and
-- formats every request once for the URL's path; request() cycles through them; response()
-- counts non-2xx answers; done() sums the threads and prints one JSON line (times in µs).

local requests = {}
local count = 0
local next_index = 0
local threads = {}
non2xx = 0
first_bad_status = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "r"))
  for line in file:lines() do
    if #line > 0 then
      count = count + 1
      requests[count] = wrk.format("POST", nil, {["Content-Type"] = "application/json"}, line)
    end
  end
  file:close()
end

function request()
  next_index = next_index % count + 1
  return requests[next_index]
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_bad_status == 0 then first_bad_status = status end
  end
end

function done(summary, latency, requests_)
  local bad, first = 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
    if first == 0 then first = thread:get("first_bad_status") end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us":%d,"requests":%d,"bytes":%d,"non2xx":%d,' ..
    '"first_non2xx_status":%d,"errors":{"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d},"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,' ..
    '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p99.9":%d,"max":%d}}\n',
    summary.duration, summary.requests, summary.bytes, bad, first, e.connect, e.read,
    e.write, e.status, e.timeout, latency.min, latency.mean, latency.stdev,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
