-- wrk script for ops/bench/bench_http.py: every thread POSTs its own pre-signed envelopes, once each.
--
-- Usage: wrk -t2 -c16 -d20s -s ops/bench/wrk_append.lua URL -- PREFIX TOKEN
-- PREFIX.<n> (n = 1, 2, ... one file per thread) holds one request per line: "<path>\t<envelope>".
-- Each response is counted by status; a thread that used up its file stops (counted as "exhausted",
-- the run is then too short to mean anything and the benchmark says so). done() prints one JSON line.

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  prefix, token = args[1], args[2]
  paths, bodies = {}, {}
  for line in io.lines(prefix .. "." .. id) do
    local tab = line:find("\t", 1, true)
    paths[#paths + 1] = line:sub(1, tab - 1)
    bodies[#bodies + 1] = line:sub(tab + 1)
  end
  headers = {["Content-Type"] = "application/json"}
  if token ~= nil and token ~= "" then
    headers["Authorization"] = "Bearer " .. token
  end
  nxt, created, other, exhausted = 0, 0, 0, 0
end

function request()
  nxt = nxt + 1
  if nxt > #paths then
    exhausted = 1
    wrk.thread:stop()
    nxt = #paths
  end
  return wrk.format("POST", paths[nxt], headers, bodies[nxt])
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local created_total, other_total, exhausted_total = 0, 0, 0
  for _, thread in ipairs(threads) do
    created_total = created_total + thread:get("created")
    other_total = other_total + thread:get("other")
    exhausted_total = exhausted_total + thread:get("exhausted")
  end
  local errors = summary.errors
  io.write(string.format(
    '{"created": %d, "other": %d, "exhausted_threads": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, "status_errors": %d}\n',
    created_total, other_total, exhausted_total, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.connect, errors.read, errors.write, errors.timeout, errors.status))
end
