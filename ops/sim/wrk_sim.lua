-- wrk script for ops/sim: every thread sends its own list of requests, once each, optionally paced.
--
-- Usage: wrk -t2 -c16 -d20s -s ops/sim/wrk_sim.lua URL -- PREFIX EXPECTED RATE_PER_THREAD [cycle]
-- PREFIX.<n> (n = 1, 2, ... one file per thread) holds one request per line:
--   "<METHOD>\t<path>\t<bearer token or empty>\t<body or empty>"
-- EXPECTED is the status that counts as success (201 for appends, 200 for reads). RATE_PER_THREAD > 0
-- paces the thread to that many requests per second (a schedule: each request is due 1/RATE after the
-- one before, so a slow answer is not made up for later by a burst beyond the connections); 0 sends as
-- fast as the connections allow. A thread that used up its file stops and is counted as "exhausted"
-- (the run is then too short to mean anything), unless "cycle" is given: then it starts its list again
-- (for requests that may repeat: reads, and the empty handlers). done() prints one JSON line.

local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } sim_timespec;
  int clock_gettime(int clk_id, sim_timespec *tp);
]]
local ts = ffi.new("sim_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  local prefix = args[1]
  expected = tonumber(args[2])
  local rate = tonumber(args[3])
  interval = rate > 0 and 1000 / rate or 0
  cycle = args[4] == "cycle"
  requests = {}
  for line in io.lines(prefix .. "." .. id) do
    local a = line:find("\t", 1, true)
    local b = line:find("\t", a + 1, true)
    local c = line:find("\t", b + 1, true)
    local method, path, token, body = line:sub(1, a - 1), line:sub(a + 1, b - 1), line:sub(b + 1, c - 1), line:sub(c + 1)
    local headers = {}
    if token ~= "" then headers["Authorization"] = "Bearer " .. token end
    if body ~= "" then headers["Content-Type"] = "application/json" else body = nil end
    requests[#requests + 1] = wrk.format(method, path, headers, body)
  end
  nxt, ok, other, exhausted, first_other, first_body = 0, 0, 0, 0, 0, ""
  due = nil
end

function delay()
  if interval == 0 then return 0 end
  local now = now_ms()
  if due == nil or due < now - 1000 then due = now end
  local wait = due - now
  due = due + interval
  return wait > 0 and wait or 0
end

function request()
  -- wrk calls the first thread's request() once before the run, to check the request parses
  -- (script_verify_request), and never sends it: that call must not use up a request, or the case
  -- whose first event it was would be refused from then on (SEQ_CONFLICT).
  if id == 1 and not verified then
    verified = true
    return requests[1]
  end
  nxt = nxt + 1
  if nxt > #requests and cycle then
    nxt = 1
  elseif nxt > #requests then
    exhausted = 1
    wrk.thread:stop()
    nxt = #requests
  end
  return requests[nxt]
end

function response(status, headers, body)
  if status == expected then
    ok = ok + 1
  else
    other = other + 1
    if first_other == 0 then
      first_other = status
      first_body = (body or ""):sub(1, 300):gsub('[%c"\\]', " ")
    end
  end
end

function done(summary, latency, requests)
  local ok_total, other_total, exhausted_total, first, first_text = 0, 0, 0, 0, ""
  for _, thread in ipairs(threads) do
    ok_total = ok_total + thread:get("ok")
    other_total = other_total + thread:get("other")
    exhausted_total = exhausted_total + thread:get("exhausted")
    if first == 0 then
      first = thread:get("first_other")
      first_text = thread:get("first_body")
    end
  end
  local errors = summary.errors
  io.write(string.format(
    '{"ok": %d, "other": %d, "first_other_status": %d, "first_other_body": "%s", "exhausted_threads": %d, "duration_us": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d}\n',
    ok_total, other_total, first, first_text, exhausted_total, summary.duration, latency:percentile(50),
    latency:percentile(99), errors.connect, errors.read, errors.write, errors.timeout))
end
